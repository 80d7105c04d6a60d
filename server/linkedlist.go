package server

// links is an element's place on a linkedList.
type links[T any] struct{ prev, next *T }

// linkedList is a list of elements linked through a field of theirs (see
// links): adding and removing one allocates nothing, nor hashes anything.
// A connection keeps its calls in flight on one. It is not safe for
// concurrent use: its owner guards it.
type linkedList[T any, P interface {
	*T
	listLinks() *links[T]
}] struct {
	head *T
	n    int
}

func (l *linkedList[T, P]) add(e *T) {
	el := P(e).listLinks()
	el.prev, el.next = nil, l.head
	if l.head != nil {
		P(l.head).listLinks().prev = e
	}
	l.head = e
	l.n++
}

// remove takes e off the list, if it is on it.
func (l *linkedList[T, P]) remove(e *T) {
	el := P(e).listLinks()
	switch {
	case el.prev != nil:
		P(el.prev).listLinks().next = el.next
	case l.head == e:
		l.head = el.next
	default:
		return
	}
	if el.next != nil {
		P(el.next).listLinks().prev = el.prev
	}
	el.prev, el.next = nil, nil
	l.n--
}

// takeAll empties the list and returns its elements.
func (l *linkedList[T, P]) takeAll() []*T {
	all := make([]*T, 0, l.n)
	for e := l.head; e != nil; {
		el := P(e).listLinks()
		next := el.next
		el.prev, el.next = nil, nil
		all = append(all, e)
		e = next
	}
	l.head, l.n = nil, 0
	return all
}
