// chan_mpmc.go: the Go peer of bench/chan_mpmc.c.
//
// Usage:
//
//	chan_mpmc [-msgs N] [-cap N]
//
// Two goroutines send 8-byte items into one buffered channel, two others
// receive them; a checksum proves each item was received once. GOMAXPROCS
// comes from the environment (the driver sets 2). The clock starts when the
// receivers together have taken a warm-up of msgs/10 items and stops at the
// last one. Prints one JSON line in the shape the weft benchmark prints.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const countStep = 256

func main() {
	msgs := flag.Int("msgs", 20000000, "timed items")
	capacity := flag.Int("cap", 1024, "channel capacity")
	flag.Parse()
	const producers, consumers = 2, 2
	warmup := *msgs / 10
	per := (*msgs + warmup) / producers
	n := uint64(per * producers)
	ch := make(chan uint64, *capacity)

	var pwg, cwg sync.WaitGroup
	var received int64
	var t0 atomic.Value
	sums := make([]uint64, consumers)
	for c := 0; c < consumers; c++ {
		cwg.Add(1)
		go func(c int) {
			defer cwg.Done()
			// Counted here and added to the shared count 256 at a
			// time, as bench/chan_mpmc.c does.
			var sum uint64
			var pending int64
			for v := range ch {
				sum += v
				if pending++; pending < countStep {
					continue
				}
				after := atomic.AddInt64(&received, pending)
				if after > int64(warmup) && after-pending <= int64(warmup) {
					t0.Store(time.Now())
				}
				pending = 0
			}
			atomic.AddInt64(&received, pending)
			sums[c] = sum
		}(c)
	}
	for p := 0; p < producers; p++ {
		pwg.Add(1)
		go func(p int) {
			defer pwg.Done()
			base := uint64(p * per)
			for i := 0; i < per; i++ {
				ch <- base + uint64(i) + 1
			}
		}(p)
	}
	pwg.Wait()
	close(ch)
	cwg.Wait()
	t1 := time.Now()

	var sum uint64
	for _, s := range sums {
		sum += s
	}
	if sum != n*(n+1)/2 || uint64(received) != n {
		fmt.Fprintln(os.Stderr, "chan_mpmc: items lost or repeated")
		os.Exit(1)
	}
	timed := int(n) - warmup
	d := t1.Sub(t0.Load().(time.Time))
	mps := float64(timed) / float64(d.Nanoseconds()) * 1e3
	fmt.Printf("{\"bench\":\"mpmc\",\"impl\":\"go\",\"gomaxprocs\":%d,\"batch\":1,"+
		"\"producers\":%d,\"consumers\":%d,\"size\":8,\"cap\":%d,\"msgs\":%d,"+
		"\"mmsgs_per_s\":%.3f,\"ns_per_msg\":%.3f}\n",
		runtime.GOMAXPROCS(0), producers, consumers, *capacity, timed, mps,
		float64(d.Nanoseconds())/float64(timed))
	fmt.Fprintf(os.Stderr, "go mpmc GOMAXPROCS=%d cap %d: %.2f M msgs/s\n",
		runtime.GOMAXPROCS(0), *capacity, mps)
}
