# What goes into the Debian package, and its control files (scripts/package).
# shellcheck shell=bash

MAINTAINER="Projectionist developers <projectionist@example.org>"

# dpkg-deb and dpkg-shlibdeps (dpkg-dev), binutils' strip, lintian for --check.
ensure_packaging_tools() {
    local missing=()
    command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
    command -v strip >/dev/null 2>&1 || missing+=(binutils)
    command -v lintian >/dev/null 2>&1 || missing+=(lintian)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]}. Install them (as root: apt-get install ${missing[*]}) and run again."
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    install_without_services "${missing[@]}"
}

# stage_files ROOT BINARY VERSION: the package's files under ROOT, with Debian's modes.
stage_files() {
    local root=$1 binary=$2 version=$3 doc
    install -d -m 0755 "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/projectionist" "$root/usr/share/man/man1" \
        "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
        "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/projectionist" "$root/usr/share/doc/projectionist"
    install -m 0755 "$binary" "$root/usr/bin/projectionist"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/projectionist"
    install -m 0644 systemd/projectionist.service "$root/lib/systemd/system/projectionist.service"
    install -m 0644 systemd/projectionist.yaml "$root/etc/projectionist/projectionist.yaml"
    install -m 0644 deploy/prometheus/alerts.yml "$root/usr/share/projectionist/alerts.yml"
    install -m 0644 deploy/grafana/projectionist.json "$root/usr/share/projectionist/grafana-dashboard.json"

    # bash-completion sources the file: no interpreter line.
    "$binary" --generate-completion-script bash | sed '1{/^#!/d}' >"$root/usr/share/bash-completion/completions/projectionist"
    "$binary" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_projectionist"
    "$binary" --generate-completion-script fish >"$root/usr/share/fish/vendor_completions.d/projectionist.fish"
    chmod 0644 "$root"/usr/share/*/*completion*/*projectionist*

    write_man_pages "$binary" "$root/usr/share/man/man1"

    doc="$root/usr/share/doc/projectionist"
    write_copyright >"$doc/copyright"
    chmod 0644 "$doc/copyright"
    debian_changelog "$version" | gzip -9n >"$doc/changelog.Debian.gz"
    gzip -9n <CHANGELOG.md >"$doc/changelog.gz"
    chmod 0644 "$doc"/*.gz
}

# write_man_pages BINARY DIR: one page per command from the command tree, by swift-argument-parser's
# generate-manual (built from the checkout the build resolved). Pages are named as git's are:
# projectionist-dead-letters-list(1), cross-references included; `help` gets none.
write_man_pages() {
    local binary=$1 dir=$2 parser tool pages page name
    parser=.build-static/checkouts/swift-argument-parser
    [ -f "$parser/Package.swift" ] || die "$parser not found: scripts/package builds the daemon first, which resolves it"
    swift build -c release --package-path "$parser" --scratch-path .build-static/generate-manual --product generate-manual >/dev/null
    tool=".build-static/generate-manual/release/generate-manual"
    pages=$(mktemp -d)
    "$tool" "$binary" --multi-page --date "$(changelog_date)" --authors "The Projectionist authors" --output-directory "$pages"
    rm -f "$pages/projectionist.help.1"
    for page in "$pages"/*.1; do
        name=$(basename "$page" .1)
        # .Dt and .Xr name pages; elsewhere a dot may be a file name (projectionist.yaml). NAME
        # gives the page's name (projectionist-run), SYNOPSIS the command (projectionist run).
        # An empty line is no mdoc: a paragraph break.
        sed -E -e '/^\.(Dt|Xr) /{:a' -e 's/^(\.(Dt|Xr) [A-Za-z-]+)\./\1-/' -e 'ta' -e '}' \
            -e '/^\.Xr projectionist-help 1/d' -e 's/^$/.Pp/' "$page" \
            | awk -v page="${name//./-}" -v command="${name//./ }" '
                /^\.Sh NAME/ { section = "name" } /^\.Sh SYNOPSIS/ { section = "synopsis" }
                section == "name" && /^\.Nm / && page != command { print ".Nm " page; next }
                section == "synopsis" && /^\.Nm$/ && page != command { print ".Nm \"" command "\""; section = ""; next }
                { print }' \
            | gzip -9n >"$dir/${name//./-}.1.gz"
    done
    rm -rf "$pages"
    chmod 0644 "$dir"/*.gz
}

# The newest CHANGELOG.md entry's date (YYYY-MM-DD): the man pages' and the changelog's date,
# so the same sources make the same package.
changelog_date() {
    sed -n 's/^## [0-9][0-9.]* — \([0-9-]*\).*/\1/p' CHANGELOG.md | head -n 1
}

# The Debian changelog, one entry per CHANGELOG.md release, its bullets as entries.
debian_changelog() {
    python3 - "$1" "$MAINTAINER" <<'PY'
import email.utils, datetime, re, sys, textwrap
text = open("CHANGELOG.md", encoding="utf-8").read()
releases = re.findall(r"^## (\d+\.\d+\.\d+) — (\d{4}-\d{2}-\d{2})\n(.*?)(?=^## |\Z)", text, re.S | re.M)
if not releases or releases[0][0] != sys.argv[1]:
    sys.exit("CHANGELOG.md's newest entry is not " + sys.argv[1])
out = []
for version, date, body in releases:
    items = [" ".join(item.split()) for item in re.findall(r"^- (.*?)(?=^- |\Z)", body, re.S | re.M)]
    out.append(f"projectionist ({version}) unstable; urgency=medium\n")
    for item in items:
        out.append(textwrap.fill(item, width=78, initial_indent="  * ", subsequent_indent="    "))
    when = datetime.datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=datetime.timezone.utc)
    out.append(f"\n -- {sys.argv[2]}  {email.utils.format_datetime(when)}\n")
print("\n".join(out), end="")
PY
}

# The copyright file: Projectionist's licence, then what the binary has linked in.
write_copyright() {
    local checkout name license
    cat <<'TEXT'
Projectionist: keeps the read models of a PostgreSQL event store up to date.

Copyright: 2026 The Projectionist authors
License: MIT
TEXT
    sed -e 's/^$/./' -e 's/^/ /' LICENSE
    cat <<'TEXT'

The binary has the Swift runtime and Foundation linked in (Copyright Apple Inc. and the Swift
project authors; License: Apache-2.0 with the Runtime Library Exception; Foundation's ICU data
is under the Unicode License), and these Swift packages, resolved by the build (each under the
licence named; the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0):
TEXT
    for checkout in .build-static/checkouts/*/; do
        name=$(basename "$checkout")
        license=$(ls "$checkout" | grep -i -m1 '^licen[cs]e' || true)
        [ -n "$license" ] || die "$checkout has no licence file"
        if grep -q 'Apache License' "$checkout/$license"; then
            printf '\n %s: Apache-2.0\n' "$name"
        else
            printf '\n %s:\n' "$name"
            sed -e 's/^$/./' -e 's/^/ /' "$checkout/$license"
        fi
    done
}

# write_control ROOT VERSION ARCH WORKDIR: DEBIAN/ with control (Depends from what the binary
# links), conffiles, md5sums, and the maintainer scripts systemd's helpers expect for a unit that
# is neither enabled nor started on install.
write_control() {
    local root=$1 version=$2 arch=$3 work=$4 depends size
    write_lintian_overrides "$root"
    install -d -m 0755 "$root/DEBIAN" "$work/shlibs/debian"
    printf 'Source: projectionist\n\nPackage: projectionist\nArchitecture: any\n' >"$work/shlibs/debian/control"
    depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$root/usr/bin/projectionist" | sed -n 's/^shlibs:Depends=//p')
    [ -n "$depends" ] || die "dpkg-shlibdeps found no libraries in $root/usr/bin/projectionist"
    case "$depends" in *libswift*) die "the binary links a Swift library dynamically: $depends" ;; esac
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    cat >"$root/DEBIAN/control" <<TEXT
Package: projectionist
Version: $version
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $size
Depends: $depends
Section: database
Priority: optional
Description: keeps the read models of a PostgreSQL event store up to date
 Projectionist follows the events table of an event store in PostgreSQL (the
 eventsalsa/store layout) by global position and applies each projection's
 handlers exactly once, with exact handling of sequence gaps, one checkpoint
 and one task per projection. It runs as a systemd service (Type=notify, with a
 watchdog), exports Prometheus metrics and health endpoints, rebuilds
 projections without downtime, and scales out over several instances with
 leases and fencing.
 .
 Installing the package neither enables nor starts the service: edit
 /etc/projectionist/projectionist.yaml, run "projectionist migrate", then
 "systemctl enable --now projectionist".
TEXT
    printf '/etc/projectionist/projectionist.yaml\n' >"$root/DEBIAN/conffiles"
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
    write_maintainer_scripts "$root/DEBIAN"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
}

# What dh_installsystemd --no-enable --no-start writes: keep systemd's view of the unit current,
# stop it on removal, clean up on purge. Nothing starts it and nothing enables it.
write_maintainer_scripts() {
    local dir=$1
    cat >"$dir/postinst" <<'TEXT'
#!/bin/sh
set -e
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	# Re-create the symlinks of a unit the administrator enabled, if any; never enable it.
	if deb-systemd-helper debian-installed 'projectionist.service'; then
		deb-systemd-helper unmask 'projectionist.service' >/dev/null || true
		if deb-systemd-helper --quiet was-enabled 'projectionist.service'; then
			deb-systemd-helper enable 'projectionist.service' >/dev/null || true
		fi
	fi
	deb-systemd-helper update-state 'projectionist.service' >/dev/null || true
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
fi
exit 0
TEXT
    cat >"$dir/prerm" <<'TEXT'
#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ] ; then
	deb-systemd-invoke stop 'projectionist.service' >/dev/null || true
fi
exit 0
TEXT
    cat >"$dir/postrm" <<'TEXT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "remove" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper mask 'projectionist.service' >/dev/null || true
	fi
fi
if [ "$1" = "purge" ]; then
	if [ -x "/usr/bin/deb-systemd-helper" ]; then
		deb-systemd-helper purge 'projectionist.service' >/dev/null || true
		deb-systemd-helper unmask 'projectionist.service' >/dev/null || true
	fi
fi
exit 0
TEXT
    chmod 0755 "$dir/postinst" "$dir/prerm" "$dir/postrm"
}

# The one lintian error a static Swift build cannot avoid: Yams compiles libyaml's C sources into
# the binary (a Swift package cannot link Debian's libyaml instead).
write_lintian_overrides() {
    local root=$1
    install -d -m 0755 "$root/usr/share/lintian/overrides"
    cat >"$root/usr/share/lintian/overrides/projectionist" <<'TEXT'
# Yams, the YAML parser, compiles libyaml into the statically linked Swift binary.
projectionist: embedded-library libyaml [usr/bin/projectionist]
TEXT
    chmod 0644 "$root/usr/share/lintian/overrides/projectionist"
}
