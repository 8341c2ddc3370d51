/// The files of a cloud-init NoCloud seed, as they appear at the root of a `cidata` disk
/// or under a NoCloud-net URL.
public struct NoCloudSeed: Sendable, Equatable {
    public var userData: [UInt8]
    public var metaData: [UInt8]
    public var vendorData: [UInt8]?
    public var networkConfig: [UInt8]?

    public init(userData: [UInt8], metaData: [UInt8], vendorData: [UInt8]? = nil, networkConfig: [UInt8]? = nil) {
        self.userData = userData
        self.metaData = metaData
        self.vendorData = vendorData
        self.networkConfig = networkConfig
    }

    /// File name → contents, in the names the NoCloud datasource reads.
    public var files: [(name: String, contents: [UInt8])] {
        var result: [(String, [UInt8])] = [("user-data", userData), ("meta-data", metaData)]
        if let vendorData { result.append(("vendor-data", vendorData)) }
        if let networkConfig { result.append(("network-config", networkConfig)) }
        return result
    }
}
