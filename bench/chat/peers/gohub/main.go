// A broadcast server in Go with gorilla/websocket's hub pattern (Debian
// golang-github-gorilla-websocket-dev): a hub goroutine owns the clients;
// each client has a read pump and a write pump with a buffered send
// channel, and a client whose channel is full is dropped, as in gorilla's
// chat example. Usage: gohub PORT (0: any free port).
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan []byte
}

type hub struct {
	clients    map[*client]bool
	broadcast  chan []byte
	register   chan *client
	unregister chan *client
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- m:
				default:
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	for {
		_, m, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.hub.broadcast <- m
	}
}

func (c *client) writePump() {
	defer c.conn.Close()
	for m := range c.send {
		w, err := c.conn.NextWriter(websocket.TextMessage)
		if err != nil {
			return
		}
		w.Write(m)
		// Queued messages go out in the same write, as in gorilla's example
		// (one frame each here, since clients parse one message per frame).
		if err := w.Close(); err != nil {
			return
		}
		for i, n := 0, len(c.send); i < n; i++ {
			if err := c.conn.WriteMessage(websocket.TextMessage, <-c.send); err != nil {
				return
			}
		}
	}
	c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}

var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}

func main() {
	h := &hub{clients: map[*client]bool{}, broadcast: make(chan []byte, 256),
		register: make(chan *client), unregister: make(chan *client)}
	go h.run()
	http.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := &client{hub: h, conn: conn, send: make(chan []byte, 1024)}
		h.register <- c
		go c.writePump()
		go c.readPump()
	})
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	http.Serve(ln, nil)
}
