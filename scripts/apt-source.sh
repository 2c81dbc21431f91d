# Fetching a Debian source package without touching the machine's apt setup.
# Sourced by the scripts; needs root (apt-get update), or a user allowed to
# run apt-get against private directories.
# shellcheck shell=bash

# apt_src_lines: prints a deb-src line for every "deb" entry of the
# machine's own apt sources (sources.list, sources.list.d/*.list one-line
# entries and sources.list.d/*.sources deb822 stanzas), keeping signed-by.
apt_src_lines() {
    local LIST PARTS f
    eval "$(apt-config shell LIST Dir::Etc::sourcelist/f PARTS Dir::Etc::sourceparts/d)"
    for f in "$LIST" "$PARTS"*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^[[:space:]]*deb[[:space:]]\+/deb-src /p' "$f"
    done
    for f in "$PARTS"*.sources; do
        [ -f "$f" ] || continue
        # deb822: stanzas separated by blank lines; continuation lines (an
        # inline key) and comments are skipped.
        awk '
            function flush(   i, j, nu, ns, u, s, opt) {
                if (types ~ /(^|[ \t])deb([ \t]|$)/ && tolower(enabled) != "no" && uris != "") {
                    opt = signed ~ /^\// ? "[signed-by=" signed "] " : ""
                    nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
                    for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
                        if (u[i] != "" && s[j] != "")
                            print "deb-src " opt u[i] " " s[j] (s[j] ~ /\/$/ ? "" : " " comps)
                }
                types = uris = suites = comps = signed = enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { next }
            {
                key = tolower($0); sub(/:.*/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "components") comps = val
                else if (key == "signed-by") signed = val
                else if (key == "enabled") enabled = val
            }
            END { flush() }' "$f"
    done
}

# apt_src_lines_for SUITE: the deb-src lines of the machine's own release
# (VERSION_CODENAME of /etc/os-release) with that suite replaced by SUITE,
# for a package only another Debian release carries. Updates and security
# suites are left out: their twins for SUITE live elsewhere.
apt_src_lines_for() {
    local suite=$1 codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    apt_src_lines | awk -v from="$codename" -v to="$suite" '
        { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } }
        from != "" && $(i + 1) == from { $(i + 1) = to; print }'
}

# apt_source PKG DESTDIR [SUITE]: downloads the source package PKG (a name,
# or name=version) into DESTDIR (.dsc, .orig and .debian tarballs, hashes
# checked against the signed Sources index). Uses a private apt
# configuration in a temporary directory: the deb-src twins of the
# machine's apt sources (or of its release's entries moved to SUITE, see
# apt_src_lines_for), private lists, no package cache files written.
# If the version asked for cannot be downloaded (a mirror may index a
# security update without carrying its files), the other versions the
# sources list are tried, newest first; a note on stderr says which one.
apt_source() {
    local pkg=$1 dest=$2 suite=${3:-} name=${1%%=*} tmp status=1 v
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/apt-source.XXXXXX")
    mkdir -p "$tmp/lists/partial" "$tmp/dl" "$dest"
    if [ -n "$suite" ]; then apt_src_lines_for "$suite"; else apt_src_lines; fi >"$tmp/sources.list"
    if [ ! -s "$tmp/sources.list" ]; then
        echo "apt_source: no deb entries in the apt sources" >&2
        rm -rf "$tmp"
        return 1
    fi
    # apt downloads as its sandbox user when it can write the target.
    if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
        chmod 755 "$tmp"
        chown _apt "$tmp/dl" "$tmp/lists/partial"
    fi
    local opts=(-q -o Dir::Etc::sourcelist="$tmp/sources.list" -o Dir::Etc::sourceparts=-
        -o Dir::State::Lists="$tmp/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
    if apt-get "${opts[@]}" update >"$tmp/update.log" 2>&1; then
        local tries=("$pkg")
        for v in $(apt-cache "${opts[@]}" showsrc "$name" 2>/dev/null |
            sed -n 's/^Version: //p' | sort -u -r -V); do
            [ "$name=$v" = "$pkg" ] || tries+=("$name=$v")
        done
        for v in "${tries[@]}"; do
            if (cd "$tmp/dl" && apt-get "${opts[@]}" source --download-only "$v") >>"$tmp/source.log" 2>&1; then
                [ "$v" = "$pkg" ] || echo "apt_source: $pkg not downloadable, fetched $v" >&2
                find "$tmp/dl" -maxdepth 1 -type f -exec cp {} "$dest/" \;
                status=0
                break
            fi
            rm -f "$tmp/dl"/*
        done
    fi
    if [ $status != 0 ]; then
        echo "apt_source: could not fetch source package $pkg:" >&2
        tail -n 20 "$tmp/update.log" "$tmp/source.log" >&2 2>/dev/null
    fi
    rm -rf "$tmp"
    return $status
}
