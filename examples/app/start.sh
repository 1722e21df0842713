# APP_MODE picks how this revision behaves, so a bad deploy is a config change away:
#   ok (default)     serve /www, /health answers 200
#   broken-health    /health answers 404 (the target group's check fails)
#   crash            exit 3 at start
#   slow             start serving after APP_START_DELAY seconds (default 12)
bb=/bin/busybox
case "${APP_MODE:-ok}" in
  crash) echo "start.sh: crashing on purpose"; exit 3 ;;
  slow) echo "start.sh: slow start, ${APP_START_DELAY:-12}s"; $bb sleep "${APP_START_DELAY:-12}" ;;
  broken-health) echo "start.sh: removing /health"; $bb rm -f /www/health ;;
esac
echo "start.sh: serving /www on :${PORT:-8080}"
exec $bb httpd -f -p "${PORT:-8080}" -h /www
