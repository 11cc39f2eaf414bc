/// An error whose description tells the user what is wrong and what to do about it. The command line
/// shows it as `Error: <description>` and exits with `exitStatus`, the same way for every command.
public protocol UserFacingError: Error, CustomStringConvertible {
    /// The exit status of a command that stops with this error.
    var exitStatus: Int32 { get }
}

extension UserFacingError {
    /// 1, the status of every refusal unless a type says otherwise.
    public var exitStatus: Int32 { 1 }
}
