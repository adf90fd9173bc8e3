# Sourced by deploy/bundle/build and deploy/image/build: the collected static files of an application copy, from a
# cache when the same inputs were collected before (collectstatic with WhiteNoise's compression takes ~20 s).
#
#   collected_static APP -- COMMAND...   # COMMAND collects into APP/.run/staticfiles when the cache misses
#
# The key is what collectstatic reads: the copy's static/ and kubemate/settings/ files (contents), the pinned
# packages that bring static files of their own (requirements.txt: Django's admin) and the collecting command.
# Python code and templates do not change the output, so a commit that touches only them hits the cache.
collected_static() {
  local app=$1; shift
  [ "${1:-}" = "--" ] && shift
  local cache key
  cache="${KUBEMATE_CACHE:-$HOME/.cache/kubemate}/static"
  key=$( { printf '%s\n' "$*" | sed "s|$app|APP|g";
           (cd "$app" && find static kubemate/settings -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z \
              | xargs -0 sha256sum);
           sha256sum < "$(dirname "${BASH_SOURCE[0]}")/../requirements.txt"; } | sha256sum | cut -c1-16)
  if [ -f "$cache/$key/staticfiles.json" ]; then
    mkdir -p "$app/.run"
    rm -rf "$app/.run/staticfiles"
    cp -a "$cache/$key" "$app/.run/staticfiles"
    return 0
  fi
  "$@"
  [ -f "$app/.run/staticfiles/staticfiles.json" ] || return 0  # the caller says what is missing
  mkdir -p "$cache"
  rm -rf "$cache/$key.tmp.$$"
  cp -a "$app/.run/staticfiles" "$cache/$key.tmp.$$"
  rm -rf "${cache:?}/$key"
  mv "$cache/$key.tmp.$$" "$cache/$key" 2>/dev/null || rm -rf "$cache/$key.tmp.$$"
  # keep the four newest collections
  find "$cache" -maxdepth 1 -mindepth 1 -type d ! -name '*.tmp.*' -printf '%T@ %p\n' | sort -rn | tail -n +5 \
    | cut -d' ' -f2- | xargs -r rm -rf
}
