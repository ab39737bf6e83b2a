import TestSupport

/// The top of a test daemon's configuration: `db`, a 5 s start-up timeout, quick polling (plus
/// `worker`, lines indented two spaces under `worker:`) and the HTTP listener at `listen`, off by
/// default (daemons of parallel tests would all want the default port); nil leaves the `metrics`
/// section to the caller. Projections follow it.
func daemonConfigPrelude(_ db: TestDatabase, worker: String = "", listen: String? = "\"\"") -> String {
    """
    database:
      url: "\(db.connectionString)"
      startup_timeout: 5s
    worker:
      poll_interval: 100ms
      max_poll_interval: 500ms
    \(worker)
    """ + (listen.map { "\nmetrics:\n  listen: \($0)" } ?? "")
}
