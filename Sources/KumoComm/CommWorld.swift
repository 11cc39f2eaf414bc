import Foundation

/// The process's world group: MPI when an MPI launcher started the process, else one local rank.
public enum CommWorld {
    /// Environment variables set by mpirun (Open MPI, PMIx, PMI, Slurm's srun with PMI).
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"]

    /// Whether an MPI launcher started this process.
    public static var isLaunchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return launcherVariables.contains { env[$0] != nil }
    }

    /// The world group: `MPICommunicator` under an MPI launcher, `LocalCommunicator` otherwise.
    public static func start(timeoutSeconds: Double) -> any Communicator {
        isLaunchedByMPI ? MPICommunicator.initWorld(timeoutSeconds: timeoutSeconds) : LocalCommunicator()
    }

    /// The world group renumbered host by host (`HostTopology`), and where its ranks run.
    public static func startByHost(timeoutSeconds: Double) -> (world: any Communicator, topology: HostTopology) {
        let launched = start(timeoutSeconds: timeoutSeconds)
        let topology = HostTopology.discover(launched)
        return (topology.arrange(launched), topology)
    }

    /// Ends MPI after a successful run (no-op for a local world).
    public static func finish(_ world: any Communicator) {
        if world is MPICommunicator { MPICommunicator.finalize() }
    }
}
