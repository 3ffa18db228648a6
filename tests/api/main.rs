//! Integration and end-to-end tests: the real server on loopback, driven over HTTP, checked by real
//! tools (Prometheus, promtool, an OpenMetrics parser, an OTLP receiver).

mod auth;
mod browser;
mod cardinality;
mod chain;
mod chaos;
mod config;
mod conformance;
mod container;
mod counting;
mod faults;
mod fidelity;
mod fuzz;
mod helpers;
mod limits;
mod load;
mod logging;
mod otel;
mod otlp;
mod pages;
mod prometheus;
mod rotel;
mod routes;
mod scrape;
mod series;
mod shutdown;
mod synthetic;
mod view_metrics;
