// Command tcpecho is a backend for e2e tests: it listens on the TCP address in its first
// argument and answers every connection with one line naming itself, so a test can tell
// which backend a Service sent it to.
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: tcpecho LISTEN-ADDR NAME")
		os.Exit(2)
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening on", l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintf(c, "hello from %s\n", os.Args[2])
		c.Close()
	}
}
