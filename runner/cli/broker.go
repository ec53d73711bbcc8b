package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/broker"
)

func brokerCmd() *cobra.Command {
	var listen string
	var partitions, brokers int
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run a standalone embedded Kafka-protocol broker (kfake) for several processes and real clients such as kcat",
		Long: `Run an in-memory Kafka-protocol broker (kfake) on a fixed address until
interrupted. Any Kafka client can use it: runner run, kcat, franz-go,
sarama. Topics are created on first use with the given partition count.
Data lives in memory and is gone when the broker stops.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := broker.Start(broker.Addr(listen), broker.Partitions(partitions), broker.Brokers(brokers))
			if err != nil {
				return err
			}
			defer b.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "broker listening on %v (%d partitions per new topic); Ctrl-C stops it\n", b.Addrs(), partitions)
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "broker stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "address to listen on (loopback by default)")
	cmd.Flags().IntVar(&partitions, "partitions", broker.DefaultPartitions, "partitions of topics created on first use")
	cmd.Flags().IntVar(&brokers, "brokers", 1, "brokers in the cluster; broker i listens on the port of --listen plus i")
	return cmd
}
