package processors

import (
	"errors"

	"github.com/IBM/sarama"

	"github.com/aetherai/aether/topology"
)

// PerProcessorSarama runs each processor of t as its own Kafka principal:
// every client of processor p (consumer group, consumers, producer, topic
// manager, timer emitter) is configured by fn(p, clientID), and the
// runtime's own admin client, which creates missing streams, by
// fn("", clientID). It replaces Sarama. Give t the topology passed to New.
//
// With least-privilege ACLs a processor may not create topics: create
// them first (runner topics --apply) and pass CreateTopics(false), or let
// fn("", ...) carry an administrator's credentials.
func PerProcessorSarama(t *topology.Topology, fn func(processor, clientID string) *sarama.Config) Option {
	return optionFunc(func(c *config) error {
		if t == nil || fn == nil {
			return errors.New("per-processor sarama: nil topology or config function")
		}
		names := make([]string, 0, len(t.Processors()))
		for _, p := range t.Processors() {
			names = append(names, p.Name)
		}
		// The runtime names a processor's clients after the topology, the
		// processor and the instance (Runtime.clientID). The instance is
		// read when a client is built, after every option has been
		// applied, so the option order does not matter.
		c.sarama = func(id string) *sarama.Config {
			for _, n := range names {
				if id == clientID(t.Name(), n, c.instance) {
					return fn(n, id)
				}
			}
			return fn("", id)
		}
		return nil
	})
}
