# scripts/package --check: what a user of the package relies on, checked on the built .deb.
# shellcheck shell=bash

# check_package DEB VERSION
check_package() {
    local deb=$1 version=$2 contents depends path work toolchain failures=0
    log "checking $deb"
    fail() { printf 'package check failed: %s\n' "$*" >&2; failures=$((failures + 1)); }

    contents=$(dpkg-deb --contents "$deb" | awk '{print $6}' | sed 's|^\./|/|')
    for path in /usr/bin/projectionist /lib/systemd/system/projectionist.service /etc/projectionist/projectionist.yaml \
        /usr/share/man/man1/projectionist.1.gz /usr/share/man/man1/projectionist-run.1.gz \
        /usr/share/man/man1/projectionist-dead-letters-list.1.gz /usr/share/bash-completion/completions/projectionist \
        /usr/share/zsh/vendor-completions/_projectionist /usr/share/fish/vendor_completions.d/projectionist.fish \
        /usr/share/projectionist/alerts.yml /usr/share/projectionist/grafana-dashboard.json \
        /usr/share/doc/projectionist/copyright /usr/share/doc/projectionist/changelog.Debian.gz; do
        grep -qx "$path" <<<"$contents" || fail "$deb lacks $path"
    done
    [ "$(dpkg-deb --field "$deb" Version)" = "$version" ] || fail "Version is not $version"
    depends=$(dpkg-deb --field "$deb" Depends)
    for path in libpq5 libsystemd0 libc6; do
        grep -q "\b$path\b" <<<"$depends" || fail "Depends lacks $path: $depends"
    done
    if grep -qi swift <<<"$depends"; then fail "Depends names Swift: $depends"; fi
    dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/projectionist/projectionist.yaml \
        || fail "the configuration is not a conffile"
    log "Depends: $depends"

    log "lintian"
    lintian --fail-on error --display-level ">=warning" "$deb" || fail "lintian reports errors (above)"

    work=$(mktemp -d /tmp/projectionist-package-check.XXXXXX)
    dpkg-deb --extract "$deb" "$work/root"
    grep -q "ExecStart=/usr/bin/projectionist run$" "$work/root/lib/systemd/system/projectionist.service" \
        || fail "the unit's ExecStart is not /usr/bin/projectionist run"
    bash -n "$work/root/usr/share/bash-completion/completions/projectionist" || fail "the bash completion does not parse"
    for path in "$work"/root/usr/share/man/man1/*.gz; do
        # As lintian does, a long synopsis line that cannot be broken is no problem.
        [ -z "$(man --warnings -l "$path" 2>&1 >/dev/null | grep -v "can't break line")" ] || fail "man reports problems in $(basename "$path")"
    done

    # The packaged binary on a machine without Swift: the toolchain's directory covered by an
    # empty tmpfs in a mount namespace of its own.
    toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
    start_postgres
    log "running the packaged binary with $toolchain hidden"
    PROJECTIONIST_DATABASE_URL="$PROJECTIONIST_TEST_DATABASE" unshare --mount $([ "$(id -u)" -eq 0 ] || echo --map-root-user) \
        bash -euo pipefail -c '
            mount -t tmpfs none "$1"
            [ ! -e "$1/lib/swift/linux/libswiftCore.so" ] || { echo "the toolchain is still visible" >&2; exit 1; }
            bin="$2/usr/bin/projectionist" config="$2/etc/projectionist/projectionist.yaml"
            if ldd "$bin" | grep -E "not found|swift"; then echo "unresolved or Swift libraries (above)" >&2; exit 1; fi
            [ "$("$bin" --version | cut -d" " -f1-2)" = "projectionist $3" ] || { echo "--version: $("$bin" --version)" >&2; exit 1; }
            "$bin" migrate --config "$config"
            "$bin" status --config "$config"
        ' check "$toolchain" "$work/root" "$version" || fail "the packaged binary did not run --version, migrate and status without Swift"
    psql -qtAc "SELECT count(*) FROM order_overview_v1" >/dev/null || fail "migrate did not create the example's table"
    rm -rf "$work"
    [ $failures -eq 0 ] || die "$failures package check(s) failed"
    log "package check passed: $(du -h "$deb" | cut -f1), binary $(dpkg-deb --field "$deb" Installed-Size) KiB installed in all"
}
