// Prints, one per line, the order body as Go's encoding/json marshals it in both versions of the
// Go Estoque's message struct: the first (with EventType) and the current one (without), for a
// fixed RefCode, ColorCode and Quantity given as arguments. The interoperability suite compares
// them byte for byte with this project's encoder and parser.
//
//	go run ./interop/go_bodies <ref-code> <color-code> <quantity>
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/google/uuid"
)

type withEventType struct {
	RefCode   uuid.UUID
	ColorCode uuid.UUID
	Quantity  int
	EventType string
}

type withoutEventType struct {
	RefCode   uuid.UUID
	ColorCode uuid.UUID
	Quantity  int
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go_bodies <ref-code> <color-code> <quantity>")
		os.Exit(2)
	}
	ref := uuid.MustParse(os.Args[1])
	color := uuid.MustParse(os.Args[2])
	quantity, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, body := range []interface{}{
		withEventType{ref, color, quantity, "CREATE"},
		withoutEventType{ref, color, quantity},
	} {
		out, err := json.Marshal(body)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(out))
	}
}
