// Package english holds the little grammar the commands' messages need.
package english

import "strconv"

// Count is n and noun, the noun in the plural (an s added) unless n is 1:
// "1 step", "2 steps", "0 steps".
func Count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
