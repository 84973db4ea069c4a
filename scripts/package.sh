#!/usr/bin/env bash
# The Debian package and the container image, built from this checkout and tested the
# way an operator and a pipeline take them, on clean Debian root filesystems:
#
#   target/debian/ecomind-admin_VERSION-1_ARCH.deb     cargo-deb (metadata in Cargo.toml)
#   target/oci/ecomind-admin-VERSION.oci.tar           OCI archive (mmdebstrap + umoci)
#
# 1. the release binary, the man page and the changelogs; cargo-deb; lintian (no error);
# 2. the package: `apt-get install ./FILE.deb` in a clean minbase root filesystem, then
#    --version, migrate up on SQLite, man ecomind-admin, bash completion;
# 3. the image: minbase + the package + postgresql-client + ca-certificates, user
#    ecomind (uid 10001), entrypoint ecomind-admin, OCI labels;
# 4. the image run against the test PostgreSQL (scripts/pg-up.sh) as its user: migrate
#    up, verify-schema, upgrade --yes with a backup directory mounted, and no URL at all.
#    With podman when this kernel lets podman run a container, else the image's
#    unpacked root filesystem with chroot as its user (the script says which).
#
# Needs root (mmdebstrap, chroot) and Debian's package mirror. Missing tools are
# installed with apt (root) or named in one line. Called by .ci/run after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${ECOMIND_PACKAGE_SUITE:-bookworm}
MIRROR=${ECOMIND_PACKAGE_MIRROR:-http://deb.debian.org/debian}
SECURITY=${ECOMIND_PACKAGE_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SOURCES=("deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY $SUITE-security main")
UID_IMAGE=10001
CARGO_DEB_VERSION=3.6.2
start=$(date +%s)
log() { echo "==> $*"; }
fail() {
    echo "package: $*" >&2
    exit 1
}
elapsed() { echo "$(($(date +%s) - start)) s"; }
# Remove a work directory, unmounting first what a run stopped by a signal left mounted in
# it (rm -rf through a bind mount would empty the mounted directory).
clean_dir() {
    local m
    for m in $(findmnt -rno TARGET | grep "^$PWD/$1/" | sort -r); do umount "$m"; done
    rm -rf "$1"
}

# --- Tools ------------------------------------------------------------------------------
need=()
for tool in mmdebstrap:mmdebstrap umoci:umoci lintian:lintian dpkg-shlibdeps:dpkg-dev \
    jq:jq podman:podman; do
    command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        fail "missing: ${need[*]} (apt-get install them as root, or run this script as root)"
    fi
    log "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" uidmap >/dev/null
fi
[[ $(id -u) -eq 0 ]] || fail "needs root: mmdebstrap, chroot and mount make the test systems (run it as root)"
TOOLS="$PWD/target/tools"
if ! "$TOOLS/bin/cargo-deb" --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
    log "cargo install cargo-deb@$CARGO_DEB_VERSION (into target/tools)"
    cargo install -q --locked --root "$TOOLS" "cargo-deb@$CARGO_DEB_VERSION"
fi

# --- 1. The package ---------------------------------------------------------------------
VERSION=$(cargo metadata --no-deps --format-version 1 |
    jq -r '.packages[] | select(.name == "ecomind-admin") | .version')
COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
log "cargo build --release ($VERSION, $COMMIT)"
cargo build --release --locked --bin ecomind-admin
BIN=target/release/ecomind-admin

ASSETS=target/package-assets
rm -rf "$ASSETS" && mkdir -p "$ASSETS"
"$BIN" man | gzip -9n >"$ASSETS/ecomind-admin.1.gz"
gzip -9n <CHANGELOG.md >"$ASSETS/changelog.gz"
maintainer=$(sed -n 's/^maintainer = "\(.*\)"$/\1/p' Cargo.toml)
cat >"$ASSETS/changelog.Debian" <<EOF
ecomind-admin ($VERSION-1) unstable; urgency=medium

  * ecomind-admin $VERSION, built from git commit ${COMMIT:0:12}.
    The changes are in /usr/share/doc/ecomind-admin/changelog.gz.

 -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF

log "cargo deb"
rm -rf target/debian && mkdir -p target/debian
PATH="$TOOLS/bin:$PATH" cargo deb --no-build --locked --output target/debian/ >/dev/null
DEB=$(ls target/debian/ecomind-admin_"$VERSION"-1_*.deb)
DEB_NAME=$(basename "$DEB")
dpkg-deb --info "$DEB" | sed -n '/Package:/,$p'
dpkg-deb --contents "$DEB" | awk '{print $6}'

log "lintian (fails on an error; warnings are printed)"
lintian --fail-on error --display-info "$DEB"

# --- 2. The package installed on a clean system ----------------------------------------
WORK=target/package-test
clean_dir "$WORK" && mkdir -p "$WORK"
ROOT="$WORK/rootfs"
log "mmdebstrap --variant=minbase $SUITE ($(elapsed))"
mmdebstrap --quiet --variant=minbase --include=man-db,bash-completion,zsh,fish \
    "$SUITE" "$ROOT" "${SOURCES[@]}"

# As an operator on that fresh system would: apt-get update, apt-get install ./FILE.deb,
# with Debian's defaults (Recommends installed), through the host's network.
mount -t proc proc "$ROOT/proc"
trap 'umount "$ROOT/proc" 2>/dev/null || true' EXIT
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb "$@"; }
cp "$DEB" "$ROOT/root/"
log "apt-get install ./$DEB_NAME in it ($(elapsed))"
in_root sh -c "cd /root && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 ./$DEB_NAME" >/dev/null

out=$(in_root ecomind-admin --version)
[[ $out == "ecomind-admin $VERSION" ]] || fail "--version printed '$out', expected 'ecomind-admin $VERSION'"
echo "--version: $out"
in_root dpkg -s postgresql-client >/dev/null || fail "apt-get install did not bring postgresql-client (Recommends)"
in_root pg_dump --version

mkdir -p "$ROOT/root/work"
in_root sh -c 'cd /root/work && ecomind-admin migrate up && ecomind-admin verify-schema' ||
    fail "migrate up / verify-schema on SQLite failed in the clean system"
[[ -s $ROOT/root/work/ecomind.db ]] || fail "migrate up made no ./ecomind.db"

page=$(in_root sh -c 'MANWIDTH=80 man ecomind-admin 2>&1')
grep -q '^NAME' <<<"$page" && grep -Eq 'ecomind-admin +- +Operator CLI' <<<"$page" &&
    grep -q 'Exit codes:' <<<"$page" ||
    fail "man ecomind-admin did not render the page: $(head -3 <<<"$page")"
echo "man ecomind-admin: $(wc -l <<<"$page") lines"

words=$(in_root bash -c 'source /usr/share/bash-completion/bash_completion
    COMP_WORDS=(ecomind-admin mig); COMP_CWORD=1; COMP_LINE="ecomind-admin mig"; COMP_POINT=${#COMP_LINE}
    _completion_loader ecomind-admin; fn=$(complete -p ecomind-admin | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
    "$fn" ecomind-admin mig ecomind-admin; echo "${COMPREPLY[*]}"')
[[ $words == *migrate* ]] || fail "bash completion of 'ecomind-admin mig' gave '$words'"
echo "bash completion of 'ecomind-admin mig': $words"
words=$(in_root fish -c 'complete --do-complete "ecomind-admin mig"')
[[ $words == migrate* ]] || fail "fish completion of 'ecomind-admin mig' gave '$words'"
echo "fish completion of 'ecomind-admin mig': $(cut -f1 <<<"$words")"
in_root zsh -fc 'autoload -Uz compinit && compinit -u -D && [[ $_comps[ecomind-admin] == _ecomind-admin ]]' ||
    fail "zsh's compinit did not find _ecomind-admin on its default fpath"
echo "zsh: compinit maps ecomind-admin to _ecomind-admin"
for f in /usr/share/doc/ecomind-admin/copyright /usr/share/doc/ecomind-admin/changelog.gz \
    /usr/share/doc/ecomind-admin/changelog.Debian.gz /usr/share/doc/ecomind-admin/README.md; do
    [[ -s $ROOT$f ]] || fail "the package did not install $f"
done
umount "$ROOT/proc"
trap - EXIT
rm -rf "$WORK"

# --- 3. The image ----------------------------------------------------------------------
OCI=target/oci
clean_dir "$OCI" && mkdir -p "$OCI"
LAYOUT="$OCI/layout"
TAG="ecomind-admin:$VERSION" # the reference podman load gives it: localhost/ecomind-admin:VERSION
ARCHIVE="$OCI/ecomind-admin-$VERSION.oci.tar"
log "mmdebstrap the image's root filesystem ($(elapsed))"
mmdebstrap --quiet --variant=minbase --include=ca-certificates,postgresql-client \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook="copy-in $DEB /tmp" \
    --customize-hook="chroot \"\$1\" apt-get install -y -q --no-install-recommends /tmp/$DEB_NAME" \
    --customize-hook="chroot \"\$1\" useradd --uid $UID_IMAGE --user-group --create-home --home-dir /home/ecomind --shell /usr/sbin/nologin ecomind" \
    --customize-hook='rm -f "$1"/tmp/*.deb; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$SUITE" "$OCI/rootfs.tar" "${SOURCES[@]}"

log "umoci: the OCI image"
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:$TAG"
umoci raw add-layer --image "$LAYOUT:$TAG" "$OCI/rootfs.tar"
source_url=${ECOMIND_SOURCE_URL:-$(git remote get-url origin 2>/dev/null || true)}
labels=(
    "org.opencontainers.image.title=ecomind-admin"
    "org.opencontainers.image.description=Operator CLI for the EcoMind API database"
    "org.opencontainers.image.version=$VERSION"
    "org.opencontainers.image.revision=$COMMIT"
    "org.opencontainers.image.licenses=MIT"
    "org.opencontainers.image.created=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    "org.opencontainers.image.source=${source_url:-git commit $COMMIT of ecomind-admin}"
    "org.opencontainers.image.base.name=debian:$SUITE (mmdebstrap minbase)"
)
label_args=()
for l in "${labels[@]}"; do label_args+=(--config.label "$l"); done
umoci config --image "$LAYOUT:$TAG" --os linux --architecture "$(dpkg --print-architecture)" \
    --config.user "$UID_IMAGE:$UID_IMAGE" --config.workingdir /home/ecomind \
    --config.entrypoint /usr/bin/ecomind-admin \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env ECOMIND_NO_DEFAULT_DATABASE=1 \
    --created "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)" \
    "${label_args[@]}"
umoci gc --layout "$LAYOUT"
rootfs_bytes=$(stat -c %s "$OCI/rootfs.tar")
rm "$OCI/rootfs.tar"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    -C "$LAYOUT" -cf "$ARCHIVE" .
blob() { echo "$LAYOUT/blobs/sha256/${1#sha256:}"; }
MANIFEST=$(blob "$(jq -r '.manifests[0].digest' "$LAYOUT/index.json")")
layer_bytes=$(jq -r '.layers | map(.size) | add' "$MANIFEST")
IMAGE_CONFIG=$(blob "$(jq -r '.config.digest' "$MANIFEST")")
jq -e --arg v "$VERSION" --arg u "$UID_IMAGE:$UID_IMAGE" '.config as $c
    | $c.User == $u and $c.Entrypoint == ["/usr/bin/ecomind-admin"]
    and $c.Labels["org.opencontainers.image.version"] == $v
    and $c.Labels["org.opencontainers.image.licenses"] == "MIT"
    and ($c.Labels["org.opencontainers.image.source"] | length > 0)' "$IMAGE_CONFIG" >/dev/null ||
    fail "the image's config lacks its user, entrypoint or labels: $(jq -c .config "$IMAGE_CONFIG")"
jq -r '.config | "user \(.User), entrypoint \(.Entrypoint | join(" ")), workdir \(.WorkingDir)",
    (.Labels | to_entries[] | "label \(.key)=\(.value)")' "$IMAGE_CONFIG"
IMAGE_SIZES="$(du -h "$ARCHIVE" | cut -f1) archive, root filesystem $((rootfs_bytes / 1024 / 1024)) MiB, compressed layer $((layer_bytes / 1024 / 1024)) MiB"
echo "image: $ARCHIVE: $IMAGE_SIZES"

# --- 4. The image run against the test PostgreSQL, as its user -------------------------
log "PostgreSQL for the image test ($(elapsed))"
SUPER_URL=$(scripts/pg-up.sh)
export PATH="/usr/lib/postgresql/15/bin:$PATH"
DB="ecomind_image_$$"
psql "$SUPER_URL" -qXc "CREATE DATABASE $DB"
cleanup_db() { psql "$SUPER_URL" -qXc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; }
trap cleanup_db EXIT
# The URL without its password, and the password in PGPASSWORD: as a pipeline passes them.
db_pass=$(sed -n 's|^postgres://[^:]*:\([^@]*\)@.*|\1|p' <<<"$SUPER_URL")
DB_URL=$(sed "s|^postgres://\([^:]*\):[^@]*@\(.*\)/[^/]*$|postgres://\1@\2/$DB|" <<<"$SUPER_URL")
BACKUPS="$OCI/backups"
mkdir -p "$BACKUPS" && chown "$UID_IMAGE:$UID_IMAGE" "$BACKUPS" && chmod 700 "$BACKUPS"

RUNNER=""
loaded=$(podman load -i "$ARCHIVE" 2>&1 | sed -n 's/^Loaded image: //p')
[[ $loaded == "localhost/ecomind-admin:$VERSION" ]] ||
    fail "podman load of $ARCHIVE gave '$loaded', expected localhost/ecomind-admin:$VERSION"
echo "podman load: $loaded"
IMAGE=$loaded
if podman run --rm --network host "$IMAGE" --version >/dev/null 2>"$OCI/podman.err"; then
    RUNNER=podman
    log "running the image with podman"
    run_image() {
        podman run --rm --network host -e DATABASE_URL -e PGPASSWORD \
            -v "$PWD/$BACKUPS:/backups" "$IMAGE" "$@"
    }
else
    RUNNER=chroot
    log "podman cannot run a container here ($(tail -1 "$OCI/podman.err")): running the image's root filesystem with chroot as its user instead"
    # The archive as shipped: extracted, and unpacked by umoci (layers, owners, config).
    BUNDLE="$OCI/bundle"
    mkdir -p "$OCI/extracted"
    tar -xf "$ARCHIVE" -C "$OCI/extracted"
    umoci unpack --image "$OCI/extracted:$TAG" "$BUNDLE" >/dev/null
    rm -rf "$OCI/extracted"
    CONFIG="$BUNDLE/config.json"
    user=$(jq -r '"\(.process.user.uid):\(.process.user.gid)"' "$CONFIG")
    cwd=$(jq -r '.process.cwd' "$CONFIG")
    mapfile -t image_env < <(jq -r '.process.env[]' "$CONFIG")
    mapfile -t entrypoint < <(jq -r '.process.args[]' "$CONFIG")
    [[ $user == "$UID_IMAGE:$UID_IMAGE" ]] || fail "the image's user is $user, expected $UID_IMAGE:$UID_IMAGE"
    mkdir -p "$BUNDLE/rootfs/backups"
    mount -t proc proc "$BUNDLE/rootfs/proc"
    mount --bind "$BACKUPS" "$BUNDLE/rootfs/backups"
    trap 'umount "$BUNDLE/rootfs/backups" "$BUNDLE/rootfs/proc" 2>/dev/null || true; cleanup_db' EXIT
    # The image's environment plus DATABASE_URL and PGPASSWORD, as podman -e passes them:
    # through the environment, never argv (no VAR=value on a command line).
    run_image() (
        local keep_url=${DATABASE_URL:-} keep_pass=${PGPASSWORD:-} v
        for v in $(compgen -e); do unset "$v"; done
        for v in "${image_env[@]}"; do export "${v?}"; done
        [[ -n $keep_url ]] && export DATABASE_URL="$keep_url"
        [[ -n $keep_pass ]] && export PGPASSWORD="$keep_pass"
        exec /usr/sbin/chroot --userspec="$user" "$BUNDLE/rootfs" /usr/bin/env -C "$cwd" \
            "${entrypoint[@]}" "$@"
    )
fi

# No database URL: the tool's own error and exit code 2, not a shell's.
set +e
err=$(run_image migrate up 2>&1 >/dev/null)
code=$?
set -e
[[ $code -eq 2 && $err == "error: no database URL"* ]] ||
    fail "the image without a database URL: exit $code, '$err' (expected exit 2, 'error: no database URL ...')"
echo "no URL: exit $code, $(head -1 <<<"$err")"

export DATABASE_URL="$DB_URL" PGPASSWORD="$db_pass"
run_image migrate up --to 001 >/dev/null
run_image verify-schema
run_image upgrade --yes --backup-dir /backups
run_image verify-schema --strict
run_image migrate current
unset DATABASE_URL PGPASSWORD
dump=$(find "$BACKUPS" -name '*.dump' | head -1)
[[ -n $dump ]] || fail "upgrade wrote no backup into the mounted directory"
owner=$(stat -c '%u %a' "$dump")
[[ $owner == "$UID_IMAGE 600" ]] || fail "the backup $dump is '$owner' (uid mode), expected '$UID_IMAGE 600'"
echo "backup: $(basename "$dump"), uid $UID_IMAGE, mode 0600, $(du -h "$dump" | cut -f1)"
if [[ $RUNNER == chroot ]]; then
    umount "$BUNDLE/rootfs/backups" "$BUNDLE/rootfs/proc"
    rm -rf "$BUNDLE"
fi
cleanup_db
trap - EXIT
rm -rf "$BACKUPS"
podman rmi -f "$IMAGE" >/dev/null

log "done in $(elapsed) (image run with $RUNNER)"
echo "package: $DEB ($(du -h "$DEB" | cut -f1), installed $(dpkg-deb -f "$DEB" Installed-Size) KiB)"
echo "image:   $ARCHIVE ($IMAGE_SIZES)"
