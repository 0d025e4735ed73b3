// Preloaded by bench/run (node --import): the Portkey gateway's start
// script listens on every interface; this makes every listen() without a
// host bind 127.0.0.1 only.
import net from 'node:net';

const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function (...args) {
    if ((typeof args[0] === 'number' || typeof args[0] === 'string')
        && (args.length === 1 || args[1] === undefined
            || typeof args[1] === 'function'))
    {
        if (args.length > 1 && args[1] === undefined) {
            args[1] = '127.0.0.1';
        } else {
            args.splice(1, 0, '127.0.0.1');
        }
    }
    return listen.apply(this, args);
};
