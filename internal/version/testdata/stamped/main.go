// Command stamped prints version.String for TestLinkTimeStampWins.
package main

import (
	"fmt"

	"github.com/stratus-cloud/stratus/internal/version"
)

func main() { fmt.Print(version.String("stamped")) }
