import KumoCore
