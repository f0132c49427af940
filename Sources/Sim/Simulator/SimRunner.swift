/// Runs a simulation and measures its wall time (the only wall-clock reading, outside the
/// simulated path).
public enum SimRunner {
    public static func run(_ config: SimConfig) -> SimReport {
        var simulation = Simulation(config: config)
        let wallClock = ContinuousClock()
        let wallStart = wallClock.now
        var report = simulation.run()
        let wall = wallClock.now - wallStart
        report.wallSeconds = wall.inSeconds
        return report
    }
}
