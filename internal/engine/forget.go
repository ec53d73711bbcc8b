package engine

import "context"

// Forgetter is implemented by sinks that keep per-key data outside Kafka
// (a cache, an index) and can erase one key's: the runtime calls Forget
// when a forget control record for the key reaches the processor, in the
// key's partition goroutine, after every record of the key before it.
// Forget returns how many items (keys, documents) it removed; a key with
// nothing stored is not an error.
type Forgetter interface {
	Forget(ctx context.Context, key string) (int, error)
}

// SinkForgetter is a processor sink that can forget a key.
type SinkForgetter struct {
	// Name is the sink's name (Sink.Name).
	Name string
	Forgetter
}

// SinkForgetters returns the sinks of n that implement Forgetter, in
// declaration order; none for a Node not built by New.
func SinkForgetters(n Node) []SinkForgetter {
	if f, ok := n.(interface{ sinkForgetters() []SinkForgetter }); ok {
		return f.sinkForgetters()
	}
	return nil
}

func (n *node[S, In, Out]) sinkForgetters() []SinkForgetter {
	var out []SinkForgetter
	for _, s := range n.spec.Sinks {
		if f, ok := s.(Forgetter); ok {
			out = append(out, SinkForgetter{Name: s.Name(), Forgetter: f})
		}
	}
	return out
}
