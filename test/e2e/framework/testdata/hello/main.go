// Command hello is what the framework's BuildBinary test builds: a main package of the
// main module that proves the binary it gets back is the one it asked for.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from", os.Args[0])
}
