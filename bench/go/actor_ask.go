// actor_ask.go: the Go peers of weft's actor and stream benchmarks
// (bench/actor_tell.c, bench/stream_handoff.c).
//
// Usage:
//
//	actor_ask ask     [-n N]   a goroutine serves requests from a channel and
//	                           answers each on the requester's reply channel;
//	                           ns per round trip
//	actor_ask tell    [-n N]   one goroutine sends N values over a channel of
//	                           1024 to a goroutine that adds them up; ns per
//	                           message
//	actor_ask handoff [-n N]   a channel of capacity 1, a writer that is
//	                           nearly always blocked; ns per item
//
// Only the standard library. GOMAXPROCS comes from the environment, so the
// driver runs each once with GOMAXPROCS=1 and once with the default. Each
// result is one JSON object on one line, in the shape the weft programs
// print.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// cpuNs is the CPU time of the whole process (user and system), read the
// same way as the weft programs read theirs, since on a machine shared with
// other work the wall clock also counts time spent waiting for a core.
func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// result is one timed run: wall and CPU nanoseconds per operation.
type result struct {
	wall, cpu float64
}

// timed runs f(n) and divides its wall and CPU time by n.
func timed(n int, f func(int)) result {
	c0 := cpuNs()
	t0 := time.Now()
	f(n)
	wall := time.Since(t0).Nanoseconds()
	return result{float64(wall) / float64(n), float64(cpuNs()-c0) / float64(n)}
}

// request is what an ask sends: the message and where to answer. Each
// client reuses one reply channel, the usual way to serve requests over
// channels without allocating per request.
type request struct {
	msg   int64
	reply chan int64
}

// server is the actor: private state, one request at a time.
func server(requests chan request) {
	var sum int64
	for req := range requests {
		if req.reply != nil {
			req.reply <- sum
		} else {
			sum += req.msg
		}
	}
}

func benchAsk(n int) result {
	requests := make(chan request, 1024)
	go server(requests)
	reply := make(chan int64, 1)
	ask := func(count int) {
		for i := 0; i < count; i++ {
			requests <- request{0, reply}
			<-reply
		}
	}
	ask(n/10 + 1)
	r := timed(n, ask)
	close(requests)
	return r
}

func benchTell(n int) result {
	tell := func(count int) {
		requests := make(chan request, 1024)
		done := make(chan struct{})
		go func() {
			server(requests)
			close(done)
		}()
		for i := 0; i < count; i++ {
			requests <- request{1, nil}
		}
		reply := make(chan int64, 1)
		requests <- request{0, reply}
		<-reply
		close(requests)
		<-done
	}
	tell(n/10 + 1)
	return timed(n, tell)
}

func benchHandoff(n int) result {
	handoff := func(count int) {
		c := make(chan int64, 1)
		go func() {
			for i := 0; i < count; i++ {
				c <- int64(i)
			}
			close(c)
		}()
		var want int64
		for v := range c {
			if v != want {
				fmt.Fprintln(os.Stderr, "actor_ask handoff: out of order")
				os.Exit(1)
			}
			want++
		}
	}
	handoff(n/10 + 1)
	return timed(n, handoff)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: actor_ask ask|tell|handoff [-n N]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	n := fs.Int("n", 1000000, "operations")
	fs.Parse(os.Args[2:])
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "actor_ask: -n must be positive")
		os.Exit(2)
	}
	procs := runtime.GOMAXPROCS(0)
	switch mode {
	case "ask", "tell":
		f := benchAsk
		if mode == "tell" {
			f = benchTell
		}
		r := f(*n)
		fmt.Printf("{\"bench\":\"%s\",\"impl\":\"go\",\"gomaxprocs\":%d,\"n\":%d,\"ns_per_op\":%.2f,\"cpu_ns_per_op\":%.2f}\n",
			mode, procs, *n, r.wall, r.cpu)
	case "handoff":
		r := benchHandoff(*n)
		fmt.Printf("{\"bench\":\"handoff\",\"impl\":\"go\",\"gomaxprocs\":%d,\"items\":%d,\"cap\":1,\"ns_per_item\":%.2f,\"cpu_ns_per_item\":%.2f}\n",
			procs, *n, r.wall, r.cpu)
	default:
		fmt.Fprintln(os.Stderr, "usage: actor_ask ask|tell|handoff [-n N]")
		os.Exit(2)
	}
}
