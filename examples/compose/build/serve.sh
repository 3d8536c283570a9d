#!/bin/sh
# Print the greeting baked into the image, then wait to be stopped.
trap 'exit 0' TERM
cat /greeting
while :; do sleep 1; done
