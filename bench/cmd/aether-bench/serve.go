package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/aetherai/aether/bench/servebench"
)

func newServe() *cobra.Command {
	var cfg servebench.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serving: ONNX inference rate, HTTP recommendations on a cache hit, and redis-benchmark GET on the same Redis",
		Long: `Trains the recommendation model on the synthetic clickstream (5,000 users
and products, 200,000 events), saves it to a temporary directory and loads
it into ONNX Runtime with its SHA-256 pinned, then measures, one after the
other, on this machine and the Redis at -redis:

  inference    (*model.Loaded).Score from one goroutine, 1 record per call
               and 64 per call, for -duration each: users/s, p50/p99 per call
  http         GET /v1/recommendations/{userId}?k=K on a cache hit: every
               user's answer is put in Redis first (operators/cache, a key
               prefix unique to the run, deleted at the end), runner/api
               serves on a loopback port, -connections keep-alive clients
               ask for random users for -duration; every answer must be 200
               from the cache with k items (any failure fails the run)
  redis        redis-benchmark -c CONNECTIONS --csv GET <one cache entry>,
               sized to last about -duration: the ceiling of a cache hit

Needs the ONNX Runtime library (bash scripts/onnxruntime.sh), a Redis
server and redis-benchmark (apt-get install -y redis-tools). Progress goes
to stderr; the last line on stdout is a JSON object with the results,
http_vs_redis_rps_ratio = http_cache_hit_rps / redis_benchmark_get_rps.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := servebench.Run(cmd.Context(), cfg, cmd.ErrOrStderr())
			if res != nil {
				// Printed even when some requests failed, so the failure
				// count is on record; the run still fails.
				js, jerr := json.Marshal(res)
				if jerr != nil {
					return jerr
				}
				if _, werr := fmt.Fprintln(cmd.OutOrStdout(), string(js)); werr != nil {
					return werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Redis, "redis", servebench.DefaultRedis, "Redis `host:port` for the cache and redis-benchmark")
	f.IntVar(&cfg.Users, "users", servebench.DefaultUsers, "users cached and requested over HTTP")
	f.DurationVar(&cfg.Duration, "duration", servebench.DefaultDuration, "length of each measured phase (inference single, batched, HTTP; redis-benchmark is sized to it)")
	f.IntVar(&cfg.Connections, "connections", servebench.DefaultConnections, "concurrent HTTP clients (keep-alive), and redis-benchmark -c")
	f.IntVarP(&cfg.K, "k", "k", servebench.DefaultK, "items per answer (?k=) and per scored user")
	f.IntVar(&cfg.TrainEvents, "train-events", servebench.DefaultTrainEvents, "clickstream events the model is trained on")
	f.IntVar(&cfg.RedisRequests, "redis-requests", 0, "redis-benchmark -n (0 = sized by a calibration run to last about -duration)")
	f.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the timed HTTP run to `FILE`")
	return cmd
}
