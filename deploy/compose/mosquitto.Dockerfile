# Mosquitto for compose.yaml: the eclipse-mosquitto image, made to run deploy/mosquitto/homewatch.conf
# unchanged. NOT built on this machine (no container registry); deploy/README.md.
#
# 2.0.x: Mosquitto 2.1 loads plugins differently (global_plugin); the shipped file is written for 2.0.
FROM eclipse-mosquitto:2.0.20

# homewatch.conf names Debian's paths: the dynamic-security plugin (this image has it in /usr/lib) and
# /var/lib/mosquitto for persistence and the accounts file, which must be the mosquitto user's (the
# broker rewrites the accounts file on every change; a new named volume takes this folder's owner).
RUN mkdir -p /usr/lib/x86_64-linux-gnu /var/lib/mosquitto /etc/mosquitto/conf.d /etc/mosquitto/homewatch \
    && ln -s /usr/lib/mosquitto_dynamic_security.so /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so \
    && chown mosquitto:mosquitto /var/lib/mosquitto
