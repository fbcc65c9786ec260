#!/usr/bin/env bash
# Metrics on and off, alternating (docs/benchmarks.md, the log's "metrics on and off"): duet bench pairs
# --rate 5000, the server started by the bench; each run writes /tmp/mb-{on,off}-N.json, and the last
# scrape of an "on" run /tmp/mb-scrape-N.txt.
set -u
B=${B:-target/release/duet} # from the repository, after cargo build --release
printf 'metrics_listen = "127.0.0.1:9464"\n' > /tmp/metrics-on.toml
printf '# metrics off (no metrics_listen)\n' > /tmp/metrics-off.toml
for i in 1 2 3 4; do
  for m in off on; do
    scraper=
    if [ $m = on ]; then
      ( while true; do curl -s -o /tmp/mb-scrape-$i.txt 127.0.0.1:9464/metrics; sleep 5; done ) &
      scraper=$!
    fi
    "$B" bench pairs --rate 5000 --duration 15 --warmup 3 --server-config /tmp/metrics-$m.toml --json > /tmp/mb-$m-$i.json 2>/tmp/mb-$m-$i.err
    echo "$m $i rc=$?"
    [ -n "$scraper" ] && kill $scraper
  done
done
