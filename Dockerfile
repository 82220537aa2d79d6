# Fjord: a Kafka-compatible broker in one static-ish binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked && strip target/release/fjord

FROM debian:bookworm-slim
COPY --from=build /src/target/release/fjord /usr/local/bin/fjord
VOLUME /var/lib/fjord
EXPOSE 9092
# Listen on every interface inside the container; advertise what clients outside can reach.
ENV FJORD_LISTENERS=PLAINTEXT://0.0.0.0:9092 \
    FJORD_ADVERTISED_LISTENERS=PLAINTEXT://localhost:9092 \
    FJORD_LOG_DIRS=/var/lib/fjord
STOPSIGNAL SIGTERM
# --kafka-env: KAFKA_* variables work as with the apache/kafka image, so an existing
# docker-compose environment block can keep its settings when it swaps the image.
ENTRYPOINT ["/usr/local/bin/fjord", "--kafka-env"]
