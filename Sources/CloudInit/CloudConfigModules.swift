/// Types of the top-level keys of the common cloud-config modules (users and groups, ssh,
/// set_passwords, hostname, write_files, runcmd, bootcmd, packages, apt, mounts, timezone,
/// locale, phone_home, final_message, power_state, growpart, resizefs, ntp), following the
/// schema Debian 12's cloud-init 22.4 validates against.
enum CloudConfigModules {
    typealias S = CloudConfigSchema

    static let stringList = S.array(.string)

    static let user: S = {
        var user = S.object([
            "name": .string, "expiredate": .string, "gecos": .string,
            "groups": .oneOf(.string, .array(.string, minItems: 1), .map(.null)),
            "homedir": .string, "inactive": .string,
            "lock-passwd": S.boolean.deprecated("Use ``lock_passwd`` instead."),
            "lock_passwd": .boolean, "no_create_home": .boolean, "no_log_init": .boolean,
            "no_user_group": .boolean, "passwd": .string, "hashed_passwd": .string,
            "plain_text_passwd": .string, "create_groups": .boolean, "primary_group": .string,
            "selinux_user": .string, "shell": .string, "snapuser": .string,
            "ssh_authorized_keys": .array(.string, minItems: 1),
            "ssh_import_id": .array(.string, minItems: 1),
            "ssh_redirect_user": .boolean, "system": .boolean,
            "sudo": .oneOf(S([.string, .null]), S.boolean.deprecated("Use of boolean values for sudo is deprecated; use a sudo rule string or null.")),
            "uid": .oneOf(.integer, S.string.deprecated("Use of string values for uid is deprecated; use an integer.")),
        ])
        // A user needs a name (or a snap user); a oneOf, as in cloud-init's schema.
        user.oneOf = [S().with { $0.required = ["name"] }, S().with { $0.required = ["snapuser"] }]
        return user
    }()

    static let mirror = S.array(S.object([
        "arches": .array(.string, minItems: 1),
        "uri": S.string.with { $0.uriFormat = true },
        "search": .array(S.string.with { $0.uriFormat = true }, minItems: 1),
        "search_dns": .boolean, "keyid": .string, "key": .string, "keyserver": .string,
    ], required: ["arches"]), minItems: 1)

    static let sizePattern: (@Sendable (String) -> Bool, String) = ({ text in
        text.range(of: #"^([0-9]+)?\.?[0-9]+[BKMGT]$"#, options: .regularExpression) != nil
    }, #"^([0-9]+)?\.?[0-9]+[BKMGT]$"#)

    static let schemas: [String: S] = [
        "users": S([.string, .array, .object]).with {
            $0.items = [.oneOf(.string, .array(.string), user)]
            $0.minItems = 1
        },
        "groups": S([.string, .object, .array]).with {
            $0.patternKey = { !$0.isEmpty }
            $0.patternSchema = [S([.string, .array]).with { $0.items = [.string]; $0.minItems = 1 }]
            $0.additionalProperties = false
            $0.items = [S([.string, .object]).with {
                $0.patternKey = { !$0.isEmpty }
                $0.patternSchema = [S([.string, .array]).with { $0.items = [.string]; $0.minItems = 1 }]
                $0.additionalProperties = false
            }]
            $0.minItems = 1
        },
        "user": .oneOf(.string, user),
        "ssh_authorized_keys": .array(.string, minItems: 1),
        "ssh_pwauth": .oneOf(.boolean, S.string.deprecated("Use of non-boolean values for this field is DEPRECATED and will result in an error in a future version of cloud-init.")),
        "chpasswd": .object([
            "expire": .boolean,
            "users": .array(S([.object]).with {
                $0.minItems = 1
                $0.anyOf = [
                    .object(["name": .string, "type": .enumeration([.string("RANDOM")], types: [.string])], required: ["name", "type"]),
                    .object(["name": .string, "type": .enumeration([.string("hash"), .string("text")], types: [.string]),
                             "password": .string], required: ["name", "password"]),
                ]
            }),
            "list": S.oneOf(.string, .array(S.string.with { $0.pattern = ({ $0.range(of: "^.+:.+$", options: .regularExpression) != nil }, "^.+:.+$") }))
                .with { $0.minItems = 1 }.deprecated("Use ``users`` instead."),
        ]),
        "password": .string,
        "hostname": .string,
        "fqdn": .string,
        "prefer_fqdn_over_hostname": .boolean,
        "preserve_hostname": .boolean,
        "manage_etc_hosts": .oneOf(.enumeration([.bool(true), .bool(false), .string("localhost")]),
                                   S.enumeration([.string("template")]).deprecated("Value ``template`` will be dropped after April 2027. Use ``true`` instead.")),
        "write_files": .array(.object([
            "path": .string, "content": .string, "owner": .string, "permissions": .string,
            "encoding": .enumeration(["gz", "gzip", "gz+base64", "gzip+base64", "gz+b64", "gzip+b64", "b64", "base64", "text/plain"].map { .string($0) }, types: [.string]),
            "append": .boolean, "defer": .boolean,
        ], required: ["path"]), minItems: 1),
        "runcmd": .array(.oneOf(.array(.string), .string, .null), minItems: 1),
        "bootcmd": .array(.oneOf(.array(.string), .string), minItems: 1),
        "packages": .array(.oneOf(.array(.string, minItems: 2, maxItems: 2), .string), minItems: 1),
        "package_update": .boolean,
        "package_upgrade": .boolean,
        "package_reboot_if_required": .boolean,
        "apt_update": S.boolean.deprecated("Use ``package_update`` instead."),
        "apt_upgrade": S.boolean.deprecated("Use ``package_upgrade`` instead."),
        "apt_reboot_if_required": S.boolean.deprecated("Use ``package_reboot_if_required`` instead."),
        "apt": .object([
            "preserve_sources_list": .boolean, "generate_mirrorlists": .boolean,
            "disable_suites": .array(.string, minItems: 1, unique: true),
            "primary": mirror, "security": mirror, "add_apt_repo_match": .string,
            "debconf_selections": .map(.string, minProperties: 1),
            "sources_list": .string, "conf": .string, "https_proxy": .string, "http_proxy": .string,
            "proxy": .string, "ftp_proxy": .string,
            "sources": .map(.object([
                "source": .string, "keyid": .string, "key": .string, "keyserver": .string,
                "filename": .string, "append": .boolean,
            ])),
        ], minProperties: 1),
        "mounts": .array(.array(.string, minItems: 1, maxItems: 6), minItems: 1),
        "mount_default_fields": .array(.oneOf(.string, .null), minItems: 6, maxItems: 6),
        "swap": .object([
            "filename": .string,
            "size": .oneOf(.enumeration([.string("auto")]), .integer, S.string.with { $0.pattern = sizePattern }),
            "maxsize": .oneOf(.integer, S.string.with { $0.pattern = sizePattern }),
        ]),
        "timezone": .string,
        "locale": .string,
        "locale_configfile": .string,
        "phone_home": .object([
            "url": S.string.with { $0.uriFormat = true },
            "post": .oneOf(.enumeration([.string("all")]),
                           .array(.enumeration(["pub_key_dsa", "pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519",
                                                "instance_id", "hostname", "fqdn"].map { .string($0) }, types: [.string]))),
            "tries": .integer,
        ], required: ["url"]),
        "final_message": .string,
        "power_state": .object([
            "delay": .oneOf(S.integer.with { $0.minimum = 0 },
                            S.string.with { $0.pattern = ({ $0.range(of: #"^\+?[0-9]+$"#, options: .regularExpression) != nil }, #"^\+?[0-9]+$"#) }
                                .deprecated("Use of string for this value will be dropped after April 2027. Use ``now`` or integer type."),
                            .enumeration([.string("now")])),
            "mode": .enumeration([.string("poweroff"), .string("reboot"), .string("halt")], types: [.string]),
            "message": .string, "timeout": .integer,
            "condition": .oneOf(.string, .boolean, .array()),
        ], required: ["mode"]),
        "growpart": .object([
            "mode": .oneOf(.enumeration([.string("auto"), .string("growpart"), .string("gpart"), .string("off")]),
                           S.enumeration([.bool(false)]).deprecated("Specifying a boolean ``false`` value for this key is deprecated. Use ``off`` instead.")),
            "devices": .array(.string),
            "ignore_growroot_disabled": .boolean,
        ]),
        "resize_rootfs": .enumeration([.bool(true), .bool(false), .string("noblock")]),
        "ntp": S([.null, .object]).with {
            $0.additionalProperties = false
            $0.properties = [
                "pools": .array(.string, unique: true), "servers": .array(.string, unique: true),
                "ntp_client": .string, "enabled": .boolean,
                "config": .object(["confpath": .string, "check_exe": .string,
                                   "packages": .array(.string, unique: true), "service_name": .string,
                                   "template": .string], minProperties: 1),
            ]
        },
        "ssh_keys": .map(.string, keys: { $0.range(of: "^(dsa|ecdsa|ed25519|rsa)_(public|private|certificate)$", options: .regularExpression) != nil }),
        "ssh_deletekeys": .boolean,
        "ssh_genkeytypes": .array(.enumeration(["dsa", "ecdsa", "ed25519", "rsa"].map { .string($0) }, types: [.string]), minItems: 1),
        "ssh_quiet_keygen": .boolean,
        "ssh_publish_hostkeys": .object(["enabled": .boolean, "blacklist": .array(.string)]),
        "allow_public_ssh_keys": .boolean,
        "disable_root": .boolean,
        "disable_root_opts": .string,
        "ssh_import_id": .array(.string),
    ]

    /// Every top-level key cloud-init 22.4's schema knows (all modules), plus the keys it
    /// reads outside the schema; anything else earns a "did you mean" warning.
    static let knownKeys: Set<String> = [
        "allow_public_ssh_keys", "ansible", "apk_repos", "apt", "apt_pipelining", "apt_reboot_if_required",
        "apt_update", "apt_upgrade", "authkey_hash", "autoinstall", "bootcmd", "byobu_by_default", "ca-certs",
        "ca_certs", "chef", "chpasswd", "cloud_config_modules", "cloud_final_modules", "cloud_init_modules",
        "device_aliases", "disable_ec2_metadata", "disable_root", "disable_root_opts", "disk_setup", "drivers",
        "fan", "final_message", "fqdn", "fs_setup", "groups", "growpart", "grub-dpkg", "grub_dpkg", "hostname",
        "keyboard", "landscape", "locale", "locale_configfile", "lxd", "manage_etc_hosts", "manage_resolv_conf",
        "mcollective", "migrate", "mount_default_fields", "mounts", "no_ssh_fingerprints", "ntp",
        "package_reboot_if_required", "package_update", "package_upgrade", "packages", "password", "phone_home",
        "power_state", "prefer_fqdn_over_hostname", "preserve_hostname", "puppet", "random_seed", "reporting",
        "resize_rootfs", "resolv_conf", "rh_subscription", "rsyslog", "runcmd", "salt_minion", "snap",
        "spacewalk", "ssh", "ssh_authorized_keys", "ssh_deletekeys", "ssh_fp_console_blacklist", "ssh_genkeytypes",
        "ssh_import_id", "ssh_key_console_blacklist", "ssh_keys", "ssh_publish_hostkeys", "ssh_pwauth",
        "ssh_quiet_keygen", "swap", "timezone", "ubuntu_advantage", "updates", "user", "users", "vendor_data",
        "wireguard", "write_files", "yum_repo_dir", "yum_repos", "zypper",
        // Read by cloud-init outside the module schemas.
        "merge_how", "merge_type", "create_hostname_file", "datasource", "datasource_list", "system_info",
        "preserve_sources_list", "manual_cache_clean", "network", "output", "log_cfg", "syslog_fix_perms",
        "def_log_file", "vendor_data2", "unverified_modules", "mount_default_fields",
    ]
}
