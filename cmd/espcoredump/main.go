// Command espcoredump decodes ESP-IDF core dumps on a laptop with the
// project's built-in decoder, and writes synthetic firmware and dumps for
// trying the local stack.
//
//	espcoredump info -elf firmware.elf [-json] dump.b64
//	espcoredump synth -chip esp32c3 [-model demo] -out DIR
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "espcoredump:", err)
		os.Exit(2)
	}
}
