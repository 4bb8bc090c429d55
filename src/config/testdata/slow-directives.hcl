  s =[  f%z[ f%i%{d%i%{d%i%{do%z[ f%i%{d%{do[ f%i%{d%{d%{do[ f%i%{d%i%{do%i = "\t uhehÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ# The quickstth
#  sumvas for its777777777ocal.app} %{ ifz[ f%i%{d%i%{d%i%{do%z[ f%i%{d%{do[ f%f%i%{d%i%{d%i%{do%z[ f%i%{d%{do[ f%i%{d%{d%{do[ f%i%{d%i%{do%i = "\t uheh# The quickstth
#  sumvas for its777777776ocal.app} %{ ifz[ f%i%{d%i%{d%i%{do%z[ f%i%{d%{do[ f%i%{d%{d%{do[ f%i%{d%i%{do%i = "\t uheh# The quickstth
#  sumvas for its7Á7777777388888on=>%  kb\tlolm
nt{ e[ f%i%t uheh kb\tloli
n[ f%i  s  =[ f%i%{do%z[ f%i%																									{do%f%i%			null														%i%{d%i%{d%i%{do%z[ f%i%{d%{[ f%i%{d%i%{do%i = "\t uheh# The quickstth
#  6666i%{do%z%i%z66h