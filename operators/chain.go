package operators

import "fmt"

// Chain runs first, then second on each value first emits. Chains nest:
// Chain(a, Chain(b, c)) is a three-operator chain.
func Chain[S, A, B, C any](first Operator[S, A, B], second Operator[S, B, C]) Operator[S, A, C] {
	return &chain[S, A, B, C]{first: first, second: second}
}

type chain[S, A, B, C any] struct {
	first  Operator[S, A, B]
	second Operator[S, B, C]
}

func (c *chain[S, A, B, C]) Name() string { return c.first.Name() + "," + c.second.Name() }

func (c *chain[S, A, B, C]) Process(ctx Context[S], in A, emit func(C) error) error {
	return Invoke(ctx, c.first, in, func(b B) error { return Invoke(ctx, c.second, b, emit) })
}

func (c *chain[S, A, B, C]) fire(ctx Context[S], name string, emit func(C) error) (bool, error) {
	next := func(b B) error { return Invoke(ctx, c.second, b, emit) }
	if ok, err := FireTimer(ctx, c.first, name, next); ok {
		return true, err
	}
	return FireTimer(ctx, c.second, name, emit)
}

func (c *chain[S, A, B, C]) names() []string { return append(Names(c.first), Names(c.second)...) }

type composite[S, Out any] interface {
	fire(ctx Context[S], name string, emit func(Out) error) (bool, error)
	names() []string
}

// Invoke runs op on in, announcing it to the runtime (see Observer). The
// runtime and Chain call it; an operator that wraps another should too.
func Invoke[S, In, Out any](ctx Context[S], op Operator[S, In, Out], in In, emit func(Out) error) error {
	if _, ok := op.(composite[S, Out]); ok {
		return op.Process(ctx, in, emit)
	}
	o, ok := ctx.(Observer)
	if !ok {
		return op.Process(ctx, in, emit)
	}
	o.Enter(op.Name())
	defer reportPanic(o)
	err := op.Process(ctx, in, emit)
	o.Leave(err)
	return err
}

// reportPanic tells the observer that the operator failed before the panic
// goes on to the runtime, which turns it into a dead letter.
func reportPanic(o Observer) {
	if r := recover(); r != nil {
		o.Leave(fmt.Errorf("panic: %v", r))
		panic(r)
	}
}

// FireTimer runs the OnTimer of the operator called name within op, and
// reports whether such a timed operator exists.
func FireTimer[S, In, Out any](ctx Context[S], op Operator[S, In, Out], name string, emit func(Out) error) (bool, error) {
	if c, ok := op.(composite[S, Out]); ok {
		return c.fire(ctx, name, emit)
	}
	t, ok := op.(Timed[S, Out])
	if !ok || op.Name() != name {
		return false, nil
	}
	o, ok := ctx.(Observer)
	if !ok {
		return true, t.OnTimer(ctx, emit)
	}
	o.Enter(name)
	defer reportPanic(o)
	err := t.OnTimer(ctx, emit)
	o.Leave(err)
	return true, err
}

// Names lists the leaf operators of op in chain order.
func Names[S, In, Out any](op Operator[S, In, Out]) []string {
	if c, ok := op.(composite[S, Out]); ok {
		return c.names()
	}
	return []string{op.Name()}
}

// CheckNames returns an error if two leaf operators of op share a name.
func CheckNames[S, In, Out any](op Operator[S, In, Out]) error {
	seen := map[string]bool{}
	for _, n := range Names(op) {
		if seen[n] {
			return fmt.Errorf("operator name %q used twice in one chain", n)
		}
		seen[n] = true
	}
	return nil
}

// Func adapts a function to a stateless-or-stateful operator.
func Func[S, In, Out any](name string, fn func(ctx Context[S], in In, emit func(Out) error) error) Operator[S, In, Out] {
	return funcOp[S, In, Out]{name, fn}
}

type funcOp[S, In, Out any] struct {
	name string
	fn   func(ctx Context[S], in In, emit func(Out) error) error
}

func (f funcOp[S, In, Out]) Name() string { return f.name }
func (f funcOp[S, In, Out]) Process(ctx Context[S], in In, emit func(Out) error) error {
	return f.fn(ctx, in, emit)
}
