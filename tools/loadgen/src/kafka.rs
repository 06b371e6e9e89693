//! A small Kafka consumer, to read back what the gateway committed to Kafka (the same way
//! `logport read` reads the embedded store).

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[arg(long)]
    brokers: String,
    #[arg(long, default_value = "logs")]
    topic: String,
    /// Once this many messages are read, stop at the first second without one (at-least-once
    /// delivery may have put duplicates beyond them).
    #[arg(long)]
    expect: Option<u64>,
    /// Stop after this many seconds without a message.
    #[arg(long, default_value_t = 5.0)]
    idle: f64,
}

pub fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", "logport-loadgen")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .create()
        .context("creating the Kafka consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(&args.topic), Duration::from_secs(10))
        .with_context(|| format!("metadata of topic {} from {}", args.topic, args.brokers))?;
    // Partitions assigned by hand from the beginning: no group coordination to wait for.
    let mut list = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            list.add_partition_offset(t.name(), p.id(), Offset::Beginning)?;
        }
    }
    anyhow::ensure!(list.count() > 0, "topic {} has no partitions", args.topic);
    consumer.assign(&list)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    let mut n = 0u64;
    let mut per_partition: HashMap<i32, u64> = HashMap::new();
    let mut last = Instant::now();
    let idle = Duration::from_secs_f64(args.idle);
    let settled = Duration::from_secs(1);
    loop {
        let quiet = last.elapsed();
        if quiet >= idle || (args.expect.is_some_and(|e| n >= e) && quiet >= settled) {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(m) => {
                let m = m.context("consuming")?;
                last = Instant::now();
                n += 1;
                *per_partition.entry(m.partition()).or_default() += 1;
                out.write_all(m.payload().unwrap_or_default())?;
                out.write_all(b"\n")?;
            }
            None => continue,
        }
    }
    out.flush()?;
    eprintln!(
        "consumed {n} messages from {} ({per_partition:?})",
        args.topic
    );
    Ok(())
}
