// echo_server.go: an echo server on Go's net package, the peer of
// apps/echo_server in bench/echo/run.sh.
//
//	go build -o /tmp/go_echo_server bench/echo/go/echo_server.go
//	GOMAXPROCS=1 /tmp/go_echo_server -listen 127.0.0.1:0 -buffer 65536
//
// It follows the same rules as apps/echo_server: a goroutine per
// connection reads into one buffer, writes all of it back, then reads
// again. Go sets TCP_NODELAY on every connection by default. It logs
// "listening on HOST:PORT" on stderr and exits on SIGINT or SIGTERM.
// Standard library only.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func serve(c net.Conn, size int) {
	defer c.Close()
	buf := make([]byte, size)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	size := flag.Int("buffer", 65536, "bytes read at once per connection")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_echo_server:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		os.Exit(0)
	}()

	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c, *size)
	}
}
