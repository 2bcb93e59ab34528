package cuda

import (
	"math"
	"testing"
)

// TestPhiloxKnownAnswers: Random123's known-answer vectors for
// philox4x32_10.
func TestPhiloxKnownAnswers(t *testing.T) {
	for _, c := range []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff}, [4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0}, [4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	} {
		if got := Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("philox(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

// TestNormalMoments: the stream's first four moments are the standard
// normal's (n = 400,000, within five standard errors).
func TestNormalMoments(t *testing.T) {
	const n = 400000
	var m1, m2, m3, m4 float64
	for i := uint64(0); i < n; i++ {
		z := Normal(7, i)
		m1 += z
		m2 += z * z
		m3 += z * z * z
		m4 += z * z * z * z
	}
	m1, m2, m3, m4 = m1/n, m2/n, m3/n, m4/n
	se := func(v float64) float64 { return 5 * math.Sqrt(v/n) }
	if math.Abs(m1) > se(1) || math.Abs(m2-1) > se(2) || math.Abs(m3) > se(15) || math.Abs(m4-3) > se(96) {
		t.Fatalf("moments %.4f %.4f %.4f %.4f", m1, m2, m3, m4)
	}
	if Normal(7, 5) == Normal(8, 5) || Normal(7, 5) == Normal(7, 6) {
		t.Fatal("streams or elements repeat")
	}
}
