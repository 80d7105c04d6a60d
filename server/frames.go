package server

import "sync"

// Frame buffers: every routed call encodes a request for its toolkit and
// an answer for its LLM client, each handed to a session's outbox, which
// owns it and, once it is written, gives it back here. The pools hold
// arrays of a few fixed sizes, so that a buffer goes in and out of a
// sync.Pool as a pointer, with no allocation; a frame that outgrew its
// buffer is left to the garbage collector.
var (
	frames512 = sync.Pool{New: func() any { return new([512]byte) }}
	frames4K  = sync.Pool{New: func() any { return new([4 << 10]byte) }}
	frames32K = sync.Pool{New: func() any { return new([32 << 10]byte) }}
)

// newFrame returns an empty buffer with room for at least n bytes: from a
// pool up to 32 KiB, else allocated.
func newFrame(n int) []byte {
	switch {
	case n <= 512:
		return frames512.Get().(*[512]byte)[:0]
	case n <= 4<<10:
		return frames4K.Get().(*[4 << 10]byte)[:0]
	case n <= 32<<10:
		return frames32K.Get().(*[32 << 10]byte)[:0]
	}
	return make([]byte, 0, n)
}

// freeFrame gives back a frame that nothing refers to any more. Any
// buffer may come here: only those of a pool's size are kept.
func freeFrame(b []byte) {
	switch cap(b) {
	case 512:
		frames512.Put((*[512]byte)(b[:512]))
	case 4 << 10:
		frames4K.Put((*[4 << 10]byte)(b[:4<<10]))
	case 32 << 10:
		frames32K.Put((*[32 << 10]byte)(b[:32<<10]))
	}
}
