package topology

import "github.com/aetherai/aether/internal/engine"

// Forgetter is implemented by a Sink that can erase one key's data when
// the user it belongs to is forgotten (runner forget): the runtime calls
// it when a forget control record for the key reaches the processor. See
// package processors (forget.go) for the control record.
type Forgetter = engine.Forgetter
