# syntax=docker/dockerfile:1
# btcbot: build once, run as a non-root user with the config directory and the data as volumes.
#   docker build -t btcbot:local .
#   docker run --rm btcbot:local                      # the embedded default: a dry run over the sample
#   docker compose up                                 # the simulated exchange + the bot on paper
# See docs/RUNBOOK.md.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so an edit to the sources does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/decide.rs \
    && cargo build --release --locked --bin btcbot \
    && rm -rf src benches
COPY src src
COPY benches benches
# The stub build left newer timestamps on the crate's own artifacts: make cargo rebuild them.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin btcbot \
    && cp target/release/btcbot /usr/local/bin/btcbot && strip /usr/local/bin/btcbot

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/btcbot --create-home btcbot
# Stripped: the release profile keeps debug info for profiling (125 MB; 19 MB stripped).
COPY --from=build /usr/local/bin/btcbot /usr/local/bin/btcbot
# The rule pack, the configs and the sample dataset; compose mounts the repository's over them.
COPY rules /opt/btcbot/rules
COPY configs /opt/btcbot/configs
COPY data/replay/sample /opt/btcbot/data/replay/sample
WORKDIR /var/lib/btcbot
USER btcbot
# /var/lib/btcbot: the SQLite database (and anything relative to the working directory).
VOLUME ["/var/lib/btcbot"]
EXPOSE 9464
# /healthz answers 503 when no cycle completed for http.max_cycle_age_s or the database stopped
# taking writes. Commands without the metrics server (sim-exchange, backtest) turn it off.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:9464/healthz || exit 1
ENTRYPOINT ["btcbot"]
CMD ["run", "--config", "/opt/btcbot/configs/default", "--no-watch"]
