#!/usr/bin/env python3
# Makes assets/favicon.ico from the design of assets/favicon.svg (run from chat-http/).
# Rasterises the favicon's design (favicon.svg) into a 32x32 and a 16x16 ICO, 4x supersampled.
import struct, zlib
BG=(0x1f,0x4e,0x79); WHITE=(255,255,255); ACC=(0x0f,0x76,0x6e)
def inside_rrect(x,y,x0,y0,x1,y1,r):
    if x<x0 or x>x1 or y<y0 or y>y1: return False
    cx=min(max(x,x0+r),x1-r); cy=min(max(y,y0+r),y1-r)
    return (x-cx)**2+(y-cy)**2<=r*r
def color_at(x,y):
    # in 32-unit space
    if not inside_rrect(x,y,0,0,32,32,7): return None
    c=BG
    bubble = inside_rrect(x,y,5,8,27,22,3)
    # tail: triangle (10,22),(15,22),(10,26)
    if 22<=y<=26 and x>=10 and x<=15-(y-22)*5/4: bubble=True
    if bubble: c=WHITE
    if inside_rrect(x,y,10,12.5,22,14.5,1) or inside_rrect(x,y,10,16.5,18,18.5,1): c=ACC
    return c
def render(n):
    ss=4; px=[]
    for j in range(n):
        row=[]
        for i in range(n):
            r=g=b=a=0
            for sj in range(ss):
                for si in range(ss):
                    x=(i+(si+.5)/ss)*32/n; y=(j+(sj+.5)/ss)*32/n
                    c=color_at(x,y)
                    if c: r+=c[0];g+=c[1];b+=c[2];a+=1
            k=ss*ss
            row.append((r//a if a else 0,g//a if a else 0,b//a if a else 0,a*255//k))
        px.append(row)
    return px
def png(n):
    px=render(n)
    raw=b''.join(b'\x00'+bytes(v for p in row for v in p) for row in px)
    def chunk(t,d): return struct.pack('>I',len(d))+t+d+struct.pack('>I',zlib.crc32(t+d)&0xffffffff)
    return b'\x89PNG\r\n\x1a\n'+chunk(b'IHDR',struct.pack('>IIBBBBB',n,n,8,6,0,0,0))+chunk(b'IDAT',zlib.compress(raw,9))+chunk(b'IEND',b'')
imgs=[(32,png(32)),(16,png(16))]
out=struct.pack('<HHH',0,1,len(imgs)); off=6+16*len(imgs); data=b''
for n,p in imgs:
    out+=struct.pack('<BBBBHHII',n,n,0,0,1,32,len(p),off+len(data)); data+=p
open('assets/favicon.ico','wb').write(out+data)

