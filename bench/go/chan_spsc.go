// chan_spsc.go: the Go peer of bench/chan_spsc.c.
//
// Usage:
//
//	chan_spsc [-msgs N] [-cap N] [-size 8|64|256]
//
// One goroutine sends numbered items into a buffered channel, another
// receives them and checks the numbers. GOMAXPROCS comes from the
// environment (the driver sets 2, so that the two may run on two threads).
// The clock runs on the receiver, from the first item after a warm-up of
// msgs/10 to the last. Prints one JSON line in the shape the weft
// benchmark prints.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

type item8 = uint64
type item64 = [8]uint64
type item256 = [32]uint64

func run[T any](msgs, capacity int, mk func(uint64) T, num func(*T) uint64) (time.Duration, int) {
	warmup := msgs / 10
	total := warmup + msgs
	ch := make(chan T, capacity)
	go func() {
		for i := 0; i < total; i++ {
			ch <- mk(uint64(i))
		}
		close(ch)
	}()
	var t0 time.Time
	errors := 0
	i := 0
	for v := range ch {
		if num(&v) != uint64(i) {
			errors++
		}
		if i == warmup {
			t0 = time.Now()
		}
		i++
	}
	if i != total {
		errors++
	}
	return time.Since(t0), errors
}

func main() {
	msgs := flag.Int("msgs", 20000000, "timed items")
	capacity := flag.Int("cap", 1024, "channel capacity")
	size := flag.Int("size", 8, "item size in bytes: 8, 64 or 256")
	flag.Parse()
	var d time.Duration
	var errors int
	switch *size {
	case 8:
		d, errors = run(*msgs, *capacity, func(i uint64) item8 { return i },
			func(v *item8) uint64 { return *v })
	case 64:
		d, errors = run(*msgs, *capacity, func(i uint64) item64 { var v item64; v[0] = i; return v },
			func(v *item64) uint64 { return v[0] })
	case 256:
		d, errors = run(*msgs, *capacity, func(i uint64) item256 { var v item256; v[0] = i; return v },
			func(v *item256) uint64 { return v[0] })
	default:
		fmt.Fprintln(os.Stderr, "chan_spsc: size is 8, 64 or 256")
		os.Exit(2)
	}
	if errors != 0 {
		fmt.Fprintln(os.Stderr, "chan_spsc: items out of sequence")
		os.Exit(1)
	}
	mps := float64(*msgs) / float64(d.Nanoseconds()) * 1e3
	fmt.Printf("{\"bench\":\"spsc\",\"impl\":\"go\",\"gomaxprocs\":%d,\"batch\":1,\"size\":%d,"+
		"\"cap\":%d,\"msgs\":%d,\"mmsgs_per_s\":%.3f,\"ns_per_msg\":%.3f}\n",
		runtime.GOMAXPROCS(0), *size, *capacity, *msgs, mps, float64(d.Nanoseconds())/float64(*msgs))
	fmt.Fprintf(os.Stderr, "go spsc GOMAXPROCS=%d size %d cap %d: %.2f M msgs/s\n",
		runtime.GOMAXPROCS(0), *size, *capacity, mps)
}
