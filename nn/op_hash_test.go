package nn

import "testing"

// TestHashcodesUnique: operators' hashcodes never coincide, however many a
// process makes: Gorgonia merges nodes whose operators hash alike (nodeEq). A
// 32-bit FNV hash of name and id made conv3#114897 and add#391038 alike.
func TestHashcodesUnique(t *testing.T) {
	names := []string{"gnsilu8.dx", "gnsilu8.dγ", "gnsilu8.dβ", "conv3.dx", "conv3.dw", "conv3.db", "gnsilu8", "conv3", "add", "stash"}
	seen := make(map[uint32]uint64, 400000)
	for id := uint64(1); id <= 400000; id++ {
		b := base{id: id, name: names[id%uint64(len(names))]}
		if other, ok := seen[b.Hashcode()]; ok {
			t.Fatalf("operators %d and %d share hashcode %#x", other, id, b.Hashcode())
		}
		seen[b.Hashcode()] = id
	}
	a, c := newBase("x", 1, 1), newBase("x", 1, 1)
	if a.Hashcode() == c.Hashcode() {
		t.Fatal("two operators of one name share a hashcode")
	}
}
