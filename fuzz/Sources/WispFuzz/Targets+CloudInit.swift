import CloudInit
import WispCore

/// User data as `wisp seed --validate` and `wisp seed --user-data` check it: cloud-config
/// YAML against the schema, MIME multipart parts, gzip, cloud-config-archive.
extension FuzzTargets {
    static let cloudInit: [FuzzTarget] = [
        FuzzTarget(name: "cloud-config", summary: "#cloud-config YAML: the nesting guard, Yams, the schema") { input in
            let validator = UserDataValidator()
            _ = validator.kind(of: input)
            _ = validator.validate(input)
        },
        FuzzTarget(name: "user-data-mime", summary: "MIME multipart user data, gzip, cloud-config-archive") { input in
            _ = UserDataValidator(fileName: "user-data").validate(input)
        },
    ]
}
