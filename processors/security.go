package processors

import (
	"errors"

	"github.com/IBM/sarama"
)

// PerProcessorSarama runs each processor as its own Kafka principal:
// every client of processor p (consumer group, consumers, producer, topic
// manager, timer emitter) is configured by fn(p, clientID), and the
// runtime's own admin client, which creates missing streams, by
// fn("", clientID). It replaces Sarama.
//
// With least-privilege ACLs a processor may not create topics: create
// them first (runner topics --apply) and pass CreateTopics(false), or let
// fn("", ...) carry an administrator's credentials.
func PerProcessorSarama(fn func(processor, clientID string) *sarama.Config) Option {
	return optionFunc(func(c *config) error {
		if fn == nil {
			return errors.New("per-processor sarama: nil config function")
		}
		c.sarama = fn
		return nil
	})
}
