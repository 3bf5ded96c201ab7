// core.go: the Go peers of weft's core benchmarks (bench/weft_core.c).
//
// Usage:
//
//	core spawn  [-batch N] [-ops N]   go + sync.WaitGroup, ns per spawn+join
//	core memory [-tasks N]            resident KiB per goroutine blocked in time.Sleep
//
// GOMAXPROCS comes from the environment, so the driver runs the spawn
// benchmark once with GOMAXPROCS=1 and once with the default. Each result is
// one JSON object on one line, in the same shape as weft_core prints.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// vmRSSKiB reads the resident set size from /proc/self/status, the same
// source the weft benchmark uses, so the two figures are comparable.
func vmRSSKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			if len(fields) >= 2 {
				v, err := strconv.ParseInt(fields[1], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}

// spawnJoin starts batch goroutines that return at once and waits for all of
// them, rounds times. The closure captures only the WaitGroup, as a weft task
// body would capture only its argument.
func spawnJoin(batch, rounds int) {
	var wg sync.WaitGroup
	for r := 0; r < rounds; r++ {
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
	}
}

func benchSpawn(batch, ops int) {
	rounds := ops / batch
	if rounds < 1 {
		rounds = 1
	}
	// A warm-up round trip grows the scheduler's free lists of goroutines
	// and stacks, as weft's warm-up fills its task and stack pools.
	spawnJoin(batch, rounds/10+1)
	start := time.Now()
	spawnJoin(batch, rounds)
	elapsed := time.Since(start)
	n := rounds * batch
	fmt.Printf("{\"bench\":\"spawn\",\"impl\":\"go\",\"gomaxprocs\":%d,\"batch\":%d,"+
		"\"ops\":%d,\"ns_per_op\":%.2f}\n",
		runtime.GOMAXPROCS(0), batch, n, float64(elapsed.Nanoseconds())/float64(n))
}

func benchMemory(tasks int) {
	// Settle the heap first so that the "before" figure does not include
	// garbage from start-up.
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := vmRSSKiB()

	start := time.Now()
	var started sync.WaitGroup
	started.Add(tasks)
	for i := 0; i < tasks; i++ {
		go func() {
			started.Done()
			time.Sleep(time.Hour)
		}()
	}
	// Every goroutine has run up to its sleep once Wait returns, so its
	// stack and timer exist.
	started.Wait()
	spawnNs := time.Since(start).Nanoseconds()

	rssAfter := vmRSSKiB()
	runtime.ReadMemStats(&after)
	fmt.Printf("{\"bench\":\"memory\",\"impl\":\"go\",\"tasks\":%d,"+
		"\"rss_before_kib\":%d,\"rss_after_kib\":%d,\"kib_per_task\":%.3f,"+
		"\"stack_inuse_kib_per_task\":%.3f,\"sys_kib_per_task\":%.3f,"+
		"\"spawn_ns_per_task\":%.1f}\n",
		tasks, rssBefore, rssAfter,
		float64(rssAfter-rssBefore)/float64(tasks),
		float64(after.StackInuse-before.StackInuse)/1024/float64(tasks),
		float64(after.Sys-before.Sys)/1024/float64(tasks),
		float64(spawnNs)/float64(tasks))
	// Goroutines blocked in time.Sleep cannot be cancelled; the process
	// simply exits, which ends them.
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: core spawn [-batch N] [-ops N] | core memory [-tasks N]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	batch := fs.Int("batch", 1000, "goroutines started before each join")
	ops := fs.Int("ops", 2000000, "spawn+join operations to time")
	tasks := fs.Int("tasks", 100000, "sleeping goroutines")
	fs.Parse(os.Args[2:])
	switch mode {
	case "spawn":
		if *batch < 1 || *ops < 1 {
			fmt.Fprintln(os.Stderr, "core: -batch and -ops must be positive")
			os.Exit(2)
		}
		benchSpawn(*batch, *ops)
	case "memory":
		if *tasks < 1 {
			fmt.Fprintln(os.Stderr, "core: -tasks must be positive")
			os.Exit(2)
		}
		benchMemory(*tasks)
	default:
		fmt.Fprintf(os.Stderr, "core: unknown mode %q\n", mode)
		os.Exit(2)
	}
}
