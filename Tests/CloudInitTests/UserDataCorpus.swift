/// User-data test corpus: cloud-config modelled on cloud-init's documented module examples
/// (users and groups, write_files, phone_home, power_state, ntp, mounts, apt, set_passwords,
/// growpart, ...) and deliberate mistakes (wrong types, misspelt keys, bad YAML). Each case
/// states what it is; `cloud-init schema` and UserDataValidator must both agree with it.
struct UserDataCase: Sendable, CustomStringConvertible {
    var name: String
    var text: String
    var valid: Bool
    /// For invalid cases: a fragment our message must contain (cloud-init's wording).
    var expectedMessage: String?

    var description: String { name }
}

enum UserDataCorpus {
    static let valid: [UserDataCase] = [
        .init(name: "default user only", text: """
            #cloud-config
            users:
              - default
            """, valid: true),
        .init(name: "groups with members and an empty group", text: """
            #cloud-config
            groups:
              - admins: [root, sys]
              - cloud-people
            """, valid: true),
        .init(name: "users with keys, sudo, shell, hashed password", text: """
            #cloud-config
            users:
              - default
              - name: alice
                gecos: Alice A. Example
                primary_group: alice
                groups: users
                lock_passwd: false
                hashed_passwd: $6$rounds=4096$saltsalt$abcdefghijklmnopqrstuvwxyz0123456789
                shell: /bin/bash
              - name: bob
                sudo: ALL=(ALL) NOPASSWD:ALL
                groups: [users, admin]
                lock_passwd: true
                ssh_authorized_keys:
                  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIexample bob@example
              - name: daemon-user
                gecos: Service account
                system: true
                no_create_home: true
            """, valid: true),
        .init(name: "user with uid integer and null sudo", text: """
            #cloud-config
            users:
              - name: carol
                uid: 1500
                sudo: null
                expiredate: '2032-09-01'
            """, valid: true),
        .init(name: "write_files b64, append, defer", text: """
            #cloud-config
            write_files:
              - encoding: b64
                content: SGVsbG8sIHdvcmxkIQo=
                owner: root:root
                path: /etc/example.conf
                permissions: '0644'
              - content: |
                  15 * * * * root ship_logs
                path: /etc/crontab
                append: true
              - path: /home/someone/late.txt
                content: written late
                defer: true
            """, valid: true),
        .init(name: "phone_home all", text: """
            #cloud-config
            phone_home:
              url: http://example.com/$INSTANCE_ID/
              post: all
            """, valid: true),
        .init(name: "phone_home key list with tries", text: """
            #cloud-config
            phone_home:
              url: https://example.com/phone/
              post: [pub_key_rsa, pub_key_ed25519, instance_id, hostname, fqdn]
              tries: 5
            """, valid: true),
        .init(name: "power_state now", text: """
            #cloud-config
            power_state:
              delay: now
              mode: poweroff
              message: Powering off
              timeout: 2
              condition: true
            """, valid: true),
        .init(name: "power_state delayed reboot with condition", text: """
            #cloud-config
            power_state:
              delay: 30
              mode: reboot
              condition: test -f /var/tmp/reboot_me
            """, valid: true),
        .init(name: "ntp with chrony", text: """
            #cloud-config
            ntp:
              enabled: true
              ntp_client: chrony
              servers: [ntp1.example.com, 192.0.2.1]
              pools: [0.pool.example.org]
            """, valid: true),
        .init(name: "ntp custom client config", text: """
            #cloud-config
            ntp:
              enabled: true
              ntp_client: myclient
              config:
                confpath: /etc/myclient.conf
                check_exe: myclientd
                packages: [myclient]
                service_name: myclient
                template: |
                  ## template:jinja
                  {% for pool in pools -%}
                  pool {{pool}} iburst
                  {% endfor %}
            """, valid: true),
        .init(name: "mounts and swap", text: """
            #cloud-config
            mounts:
              - [ /dev/ephemeral0, /mnt, auto, "defaults,noexec" ]
              - [ sdc, /opt/data ]
              - [ xvdh, /opt/data2, auto, "defaults,nofail", "0", "0" ]
            mount_default_fields: [None, None, auto, "defaults,nofail", "0", "2"]
            swap:
              filename: /swapfile
              size: 2G
              maxsize: 2G
            """, valid: true),
        .init(name: "apt primary mirrors and sources", text: """
            #cloud-config
            apt:
              preserve_sources_list: false
              disable_suites: [$RELEASE-updates, backports]
              primary:
                - arches: [amd64, i386, default]
                  uri: http://deb.debian.org/debian
                  search_dns: false
              sources:
                example.list:
                  source: deb http://apt.example.com/ $RELEASE main
                  keyid: 0123456789ABCDEF
              http_proxy: http://proxy.example:3128
            """, valid: true),
        .init(name: "set passwords with chpasswd users", text: """
            #cloud-config
            ssh_pwauth: false
            chpasswd:
              expire: false
              users:
                - name: user1
                  password: password1
                  type: text
                - name: user2
                  password: $6$rounds=4096$5DJ8a9WMTEzIo5J4$Yms6imfeBvf3Yfu84mQBerh18l7OR1Wm1BJXZqFSpJ6BVas0AYJqIjP7czkOaAZHZi1kxQ5Y1IhgWN8K9NgxR1
                - name: user3
                  type: RANDOM
            """, valid: true),
        .init(name: "default password and ssh_pwauth", text: """
            #cloud-config
            ssh_pwauth: true
            password: password1
            """, valid: true),
        .init(name: "growpart explicit devices", text: """
            #cloud-config
            growpart:
              mode: growpart
              devices: ["/", "/dev/vdb1"]
              ignore_growroot_disabled: true
            resize_rootfs: noblock
            """, valid: true),
        .init(name: "runcmd and bootcmd mixed forms", text: """
            #cloud-config
            bootcmd:
              - echo 192.168.1.130 us.archive.ubuntu.com >> /etc/hosts
              - [ cloud-init-per, once, mymkfs, mkfs, /dev/vdb ]
            runcmd:
              - [ ls, -l, / ]
              - [ sh, -xc, "echo $(date) ': hello world!'" ]
              - ls -l /root
              -
            """, valid: true),
        .init(name: "packages with versions and updates", text: """
            #cloud-config
            package_update: true
            package_upgrade: true
            package_reboot_if_required: true
            packages:
              - pwgen
              - [libpython3.11, 3.11.2-6]
            """, valid: true),
        .init(name: "hostname, fqdn, hosts, timezone, locale", text: """
            #cloud-config
            hostname: myhost
            fqdn: myhost.example.com
            prefer_fqdn_over_hostname: true
            manage_etc_hosts: localhost
            timezone: Europe/Paris
            locale: fr_FR.UTF-8
            final_message: "The system is finally up, after $UPTIME seconds"
            """, valid: true),
        .init(name: "ssh host keys and authorized keys", text: """
            #cloud-config
            ssh_authorized_keys:
              - ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ example
            ssh_deletekeys: true
            ssh_genkeytypes: [ed25519, ecdsa]
            ssh_keys:
              ed25519_private: |
                -----BEGIN OPENSSH PRIVATE KEY-----
                b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ
                -----END OPENSSH PRIVATE KEY-----
              ed25519_public: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIexample host
            disable_root: true
            """, valid: true),
        .init(name: "deprecated but accepted: string ssh_pwauth, apt_update", text: """
            #cloud-config
            ssh_pwauth: "no"
            apt_update: true
            """, valid: true),
        .init(name: "unknown top-level keys are allowed (warned)", text: """
            #cloud-config
            packagess: [vim]
            my_custom_thing: 42
            """, valid: true),
        .init(name: "YAML 1.1 booleans", text: """
            #cloud-config
            package_update: yes
            ssh_pwauth: off
            """, valid: true),
        .init(name: "ntp null", text: """
            #cloud-config
            ntp:
            """, valid: true),
    ]

    static let invalid: [UserDataCase] = [
        .init(name: "runcmd as a string", text: """
            #cloud-config
            runcmd: echo hello
            """, valid: false, expectedMessage: "runcmd: 'echo hello' is not of type 'array'"),
        .init(name: "empty packages list", text: """
            #cloud-config
            packages: []
            """, valid: false, expectedMessage: "packages: [] is too short"),
        .init(name: "package_update as string", text: """
            #cloud-config
            package_update: "true"
            """, valid: false, expectedMessage: "package_update: 'true' is not of type 'boolean'"),
        .init(name: "user with misspelt key", text: """
            #cloud-config
            users:
              - name: dave
                shel: /bin/bash
            """, valid: false, expectedMessage: "users.0:"),
        .init(name: "user without name", text: """
            #cloud-config
            users:
              - gecos: nobody
            """, valid: false, expectedMessage: "users.0:"),
        .init(name: "user sudo as integer", text: """
            #cloud-config
            users:
              - name: a
                sudo: 5
            """, valid: false, expectedMessage: "is not valid under any of the given schemas"),
        .init(name: "unquoted date in expiredate", text: """
            #cloud-config
            users:
              - name: a
                expiredate: 2032-09-01
            """, valid: false, expectedMessage: "users.0:"),
        .init(name: "write_files without path", text: """
            #cloud-config
            write_files:
              - content: hello
            """, valid: false, expectedMessage: "'path' is a required property"),
        .init(name: "write_files bad encoding and permissions int", text: """
            #cloud-config
            write_files:
              - path: /x
                encoding: rot13
            """, valid: false, expectedMessage: "write_files.0.encoding: 'rot13' is not one of"),
        .init(name: "write_files misspelt key", text: """
            #cloud-config
            write_files:
              - path: /x
                contents: hi
            """, valid: false, expectedMessage: "Additional properties are not allowed ('contents' was unexpected)"),
        .init(name: "phone_home without url", text: """
            #cloud-config
            phone_home:
              post: all
            """, valid: false, expectedMessage: "'url' is a required property"),
        .init(name: "phone_home bad url and post", text: """
            #cloud-config
            phone_home:
              url: not a url
              post: everything
            """, valid: false, expectedMessage: "phone_home.url: 'not a url' is not a 'uri'"),
        .init(name: "power_state bad mode", text: """
            #cloud-config
            power_state:
              mode: explode
            """, valid: false, expectedMessage: "power_state.mode: 'explode' is not one of ['poweroff', 'reboot', 'halt']"),
        .init(name: "power_state negative delay", text: """
            #cloud-config
            power_state:
              mode: reboot
              delay: -1
            """, valid: false, expectedMessage: "power_state.delay: -1 is not valid under any of the given schemas"),
        .init(name: "resize_rootfs integer", text: """
            #cloud-config
            resize_rootfs: 1
            """, valid: false, expectedMessage: "resize_rootfs: 1 is not one of [True, False, 'noblock']"),
        .init(name: "growpart bad mode", text: """
            #cloud-config
            growpart:
              mode: sometimes
            """, valid: false, expectedMessage: "growpart.mode:"),
        .init(name: "ntp servers not a list", text: """
            #cloud-config
            ntp:
              servers: ntp.example.com
            """, valid: false, expectedMessage: "ntp.servers: 'ntp.example.com' is not of type 'array'"),
        .init(name: "mounts entry too long", text: """
            #cloud-config
            mounts:
              - [a, b, c, d, e, f, g]
            """, valid: false, expectedMessage: "is too long"),
        .init(name: "apt unknown key", text: """
            #cloud-config
            apt:
              preserve_source_list: true
            """, valid: false, expectedMessage: "Additional properties are not allowed ('preserve_source_list' was unexpected)"),
        .init(name: "chpasswd list of wrong type", text: """
            #cloud-config
            chpasswd:
              expire: maybe
            """, valid: false, expectedMessage: "chpasswd.expire: 'maybe' is not of type 'boolean'"),
        .init(name: "ssh_authorized_keys as a string", text: """
            #cloud-config
            ssh_authorized_keys: ssh-ed25519 AAAA key
            """, valid: false, expectedMessage: "ssh_authorized_keys: 'ssh-ed25519 AAAA key' is not of type 'array'"),
        .init(name: "ssh_keys unknown key type", text: """
            #cloud-config
            ssh_keys:
              ed448_private: x
            """, valid: false, expectedMessage: "ssh_keys: Additional properties are not allowed ('ed448_private' was unexpected)"),
        .init(name: "hostname as a list", text: """
            #cloud-config
            hostname: [a, b]
            """, valid: false, expectedMessage: "hostname: ['a', 'b'] is not of type 'string'"),
        .init(name: "timezone as integer", text: """
            #cloud-config
            timezone: 5
            """, valid: false, expectedMessage: "timezone: 5 is not of type 'string'"),
        .init(name: "bad YAML: unclosed flow sequence", text: """
            #cloud-config
            packages: [vim, curl
            runcmd: [ls]
            """, valid: false, expectedMessage: "is not valid yaml"),
        .init(name: "bad YAML: tab indentation", text: "#cloud-config\nusers:\n\t- name: a\n", valid: false, expectedMessage: "is not valid yaml"),
        .init(name: "bad YAML: bad indentation", text: """
            #cloud-config
            users:
              - name: a
               shell: /bin/sh
            """, valid: false, expectedMessage: "format-l"),
        .init(name: "missing header", text: """
            users:
              - default
            """, valid: false, expectedMessage: "needs to begin with \"#cloud-config\""),
        .init(name: "not a mapping", text: """
            #cloud-config
            - just
            - a list
            """, valid: false, expectedMessage: "Cloud-config is not a YAML dict."),
        .init(name: "header only", text: "#cloud-config\n", valid: false, expectedMessage: "Cloud-config is not a YAML dict."),
    ]
}
