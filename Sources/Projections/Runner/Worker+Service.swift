import ServiceLifecycle

/// A `Worker` is a swift-service-lifecycle `Service`: an application runs its projections in its
/// own `ServiceGroup`, next to its HTTP server, and stops them with the group's graceful shutdown.
extension Worker: Service {
    /// Checks the schema, then runs every projection until graceful shutdown or cancellation.
    ///
    /// Graceful shutdown cancels the runners: a batch in flight is rolled back or has committed,
    /// and each runner records the state `stopped` before this returns.
    /// - Throws: `SchemaError` or `PostgresError` from the start-up check.
    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await self.run(verify: true) }
    }
}
