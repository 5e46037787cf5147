package mapping

import "unsafe"

// Sizes of an arena's blocks: the first is small (a preview maps a row or
// two), each next one twice as large up to maxArenaBlock.
const (
	minArenaBlock = 256
	maxArenaBlock = 32 << 10
)

// arena makes strings out of bytes without one allocation per string: it
// copies them into large blocks and returns strings that point into them.
// A block is only ever appended to, never rewritten, so the strings are
// immutable like any other and stay valid as long as they are referenced
// (which keeps their whole block alive). Not safe for concurrent use.
type arena struct {
	block []byte
	next  int // size of the next block
}

// str returns b as a string.
func (a *arena) str(b []byte) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > maxArenaBlock/8 {
		return string(b)
	}
	if cap(a.block)-len(a.block) < n {
		if a.next < minArenaBlock {
			a.next = minArenaBlock
		}
		a.block = make([]byte, 0, a.next)
		a.next = min(2*a.next, maxArenaBlock)
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return unsafe.String(&a.block[start], n)
}
