/// `[run]`: how the run is filed in the run registry (`kumo runs`, `kumo dashboard`).
public struct RunSection: ConfigSection, Sendable {
    /// The experiment the run belongs to (`kumo train --experiment NAME` sets it).
    public var experiment = "default"
    /// Whether rank 0 records the run in the registry (`$KUMO_HOME/registry.sqlite`, or `KUMO_REGISTRY`).
    public var registry = true

    public init() {}

    public static var fields: [ConfigField<Self>] {
        [
            .value("run.experiment", \.experiment, help: "experiment name the run is filed under in the run registry"),
            .value(
                "run.registry", \.registry,
                help: "record the run in the run registry ($KUMO_HOME/registry.sqlite or KUMO_REGISTRY)"),
        ]
    }
}
