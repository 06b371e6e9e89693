//! The syslog source: RFC 3164 and RFC 5424 over TCP (both RFC 6587 framings), TLS and UDP,
//! shaped as Logstash's syslog input shapes them.

mod app;
mod datagram;
mod shape;
mod stream;

pub use app::AppKey;
pub use datagram::SyslogDatagrams;
pub use shape::Shaper;
pub use stream::SyslogStream;
