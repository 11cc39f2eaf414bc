/// The mesh is refused: its sizes do not fit the world.
public struct DeviceMeshError: Error, CustomStringConvertible {
    public var description: String
}

/// The rank layout of `[parallel]`: tensor-parallel ranks vary fastest, then data-parallel,
/// then pipeline: rank = tp + tensor·(dp + data·pp). Tensor groups are thus consecutive ranks
/// (one node's fast links), as in Megatron-LM. Data-parallel size is derived:
/// world / (tensor · pipeline).
public struct DeviceMesh: Sendable, Equatable {
    public let world: Int
    public let tensor: Int
    public let pipeline: Int
    public let data: Int

    /// The mesh of `world` ranks with the given tensor and pipeline sizes.
    public init(world: Int, tensor: Int = 1, pipeline: Int = 1) throws(DeviceMeshError) {
        guard world >= 1, tensor >= 1, pipeline >= 1 else {
            throw DeviceMeshError(
                description: "parallel.tensor = \(tensor), parallel.pipeline = \(pipeline): sizes must be at least 1")
        }
        guard world % (tensor * pipeline) == 0 else {
            throw DeviceMeshError(
                description:
                    "\(world) ranks cannot be split into parallel.tensor = \(tensor) × parallel.pipeline = \(pipeline) "
                    + "(= \(tensor * pipeline)) groups: the data-parallel size world / (tensor × pipeline) must be "
                    + "a whole number; launch a multiple of \(tensor * pipeline) ranks")
        }
        self.world = world
        self.tensor = tensor
        self.pipeline = pipeline
        data = world / (tensor * pipeline)
    }

    /// A rank's coordinates in the mesh.
    public struct Coordinate: Sendable, Equatable {
        public var tensor: Int
        public var data: Int
        public var pipeline: Int
    }

    /// The coordinates of `rank`.
    public func coordinate(of rank: Int) -> Coordinate {
        Coordinate(tensor: rank % tensor, data: rank / tensor % data, pipeline: rank / (tensor * data))
    }

    /// The rank at `c`.
    public func rank(at c: Coordinate) -> Int { c.tensor + tensor * (c.data + data * c.pipeline) }

    /// The groups of one kind: each group's ranks (in group-rank order) and the index of the
    /// group a rank belongs to, the colour for `Communicator.split`.
    public enum GroupKind: String, Sendable, CaseIterable {
        /// Ranks that differ only in the tensor coordinate.
        case tensor
        /// Ranks that differ only in the data coordinate: gradients are all-reduced here.
        case data
        /// Ranks that differ only in the pipeline coordinate.
        case pipeline
    }

    /// The group index (split colour) of `rank` for `kind`.
    public func groupIndex(of rank: Int, _ kind: GroupKind) -> Int {
        let c = coordinate(of: rank)
        switch kind {
        case .tensor: return c.data + data * c.pipeline
        case .data: return c.tensor + tensor * c.pipeline
        case .pipeline: return c.tensor + tensor * c.data
        }
    }

    /// The world ranks of the `kind` group that holds `rank`, in group-rank order.
    public func group(of rank: Int, _ kind: GroupKind) -> [Int] {
        (0..<world).filter { groupIndex(of: $0, kind) == groupIndex(of: rank, kind) }
    }

    /// Hybrid sharding inside the data-parallel group: shard groups of `shardSize` consecutive
    /// data ranks (a node) and replica groups of the ranks at the same position in each shard
    /// group. Returns the split colours of `rank`.
    public func hybridGroups(of rank: Int, shardSize: Int) throws(DeviceMeshError) -> (shard: Int, replica: Int) {
        guard shardSize >= 1, data % shardSize == 0 else {
            throw DeviceMeshError(
                description:
                    "parallel.shard_group_size = \(shardSize) must divide the data-parallel size \(data)")
        }
        let c = coordinate(of: rank)
        let dataGroup = groupIndex(of: rank, .data)
        let shard = dataGroup * (data / shardSize) + c.data / shardSize
        let replica = dataGroup * shardSize + c.data % shardSize
        return (shard, replica)
    }
}
