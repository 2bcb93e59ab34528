// Package english holds the little grammar the commands' messages need.
package english

import (
	"strconv"
	"strings"
)

// Count is n and noun, the noun in the plural (an s added) unless n is 1:
// "1 step", "2 steps", "0 steps".
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// List joins items as a sentence does: "a", "a and b", "a, b and c".
func List(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
