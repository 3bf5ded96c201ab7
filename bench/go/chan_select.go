// chan_select.go: the Go peer of bench/chan_select.c.
//
// Usage:
//
//	chan_select [-iters N]
//
// One goroutine, four buffered channels. Each iteration sends one item into
// channel i%4 and selects over receives on all four; the same loop with a
// plain receive is the baseline. GOMAXPROCS comes from the environment (the
// driver sets 1). Prints one JSON line in the shape the weft benchmark
// prints.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func loopSelect(c [4]chan int, n int) (float64, int) {
	errors := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		k := i & 3
		c[k] <- i
		var v, fired int
		select {
		case v = <-c[0]:
			fired = 0
		case v = <-c[1]:
			fired = 1
		case v = <-c[2]:
			fired = 2
		case v = <-c[3]:
			fired = 3
		}
		if fired != k || v != i {
			errors++
		}
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n), errors
}

func loopRecv(c [4]chan int, n int) (float64, int) {
	errors := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		k := i & 3
		c[k] <- i
		if <-c[k] != i {
			errors++
		}
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n), errors
}

func main() {
	iters := flag.Int("iters", 10000000, "timed iterations")
	flag.Parse()
	var c [4]chan int
	for k := range c {
		c[k] = make(chan int, 16)
	}
	loopSelect(c, *iters/10+1)
	sel, e1 := loopSelect(c, *iters)
	loopRecv(c, *iters/10+1)
	base, e2 := loopRecv(c, *iters)
	if e1+e2 != 0 {
		fmt.Fprintln(os.Stderr, "chan_select: wrong case fired")
		os.Exit(1)
	}
	fmt.Printf("{\"bench\":\"select\",\"impl\":\"go\",\"gomaxprocs\":%d,\"cases\":4,"+
		"\"iters\":%d,\"ns_per_select\":%.2f,\"ns_baseline\":%.2f,\"ns_select_only\":%.2f}\n",
		runtime.GOMAXPROCS(0), *iters, sel, base, sel-base)
	fmt.Fprintf(os.Stderr, "go select GOMAXPROCS=%d: %.1f ns per send+select, %.1f ns per send+recv\n",
		runtime.GOMAXPROCS(0), sel, base)
}
