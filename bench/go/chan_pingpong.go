// chan_pingpong.go: the Go peer of bench/chan_pingpong.c.
//
// Usage:
//
//	chan_pingpong [-rounds N]
//
// Two goroutines bounce a number over two unbuffered channels. GOMAXPROCS
// comes from the environment: the driver runs it with 1 (the peer of weft's
// LOCAL channels on one executor) and with 2 (the peer of MPMC channels
// across two executors). Prints ns per round trip after a warm-up of
// rounds/10, as one JSON line.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	rounds := flag.Int("rounds", 5000000, "timed round trips")
	flag.Parse()
	warmup := *rounds / 10
	total := warmup + *rounds
	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for i := 0; i < total; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	var t0 time.Time
	errors := 0
	for i := 0; i < total; i++ {
		if i == warmup {
			t0 = time.Now()
		}
		ping <- i
		if <-pong != i+1 {
			errors++
		}
	}
	d := time.Since(t0)
	if errors != 0 {
		fmt.Fprintln(os.Stderr, "chan_pingpong: wrong replies")
		os.Exit(1)
	}
	ns := float64(d.Nanoseconds()) / float64(*rounds)
	fmt.Printf("{\"bench\":\"pingpong\",\"impl\":\"go\",\"gomaxprocs\":%d,\"rounds\":%d,"+
		"\"ns_per_round_trip\":%.2f}\n", runtime.GOMAXPROCS(0), *rounds, ns)
	fmt.Fprintf(os.Stderr, "go pingpong GOMAXPROCS=%d: %.1f ns per round trip\n",
		runtime.GOMAXPROCS(0), ns)
}
